import DTrainNN

// The safetensors reader and writer are where a model's state_dict is read from and written to.

extension SafeTensorsFile: StateDictSource {
    public func shape(of name: String) -> [Int]? { entries[name]?.shape }
}

extension SafeTensorsWriter: StateDictSink {}
