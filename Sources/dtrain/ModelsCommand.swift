import ArgumentParser
import DTrainNN

struct ModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "List the model zoo: name, parameters, GMACs per image at the default resolution.")

    @Flag(help: "Print one JSON object per model.")
    var json = false

    func run() throws {
        if !json {
            print("model".padding(18) + "params".leftPadding(12) + "GMACs".leftPadding(9) + "resolution".leftPadding(12) + "  description")
        }
        for spec in ModelZoo.specs {
            let model = Model(spec: spec, options: ModelOptions())
            model.build(batch: 1)
            let gmacs = Double(model.macsPerImage) / 1e9
            if json {
                print("{\"name\":\"\(spec.name)\",\"parameters\":\(model.parameterCount),\"gmacs\":\(gmacs),\"resolution\":\(spec.defaultResolution),\"family\":\"\(spec.family.rawValue)\"}")
            } else {
                print(spec.name.padding(18) + String(model.parameterCount).leftPadding(12)
                      + String(format: "%.3f", gmacs).leftPadding(9) + String(spec.defaultResolution).leftPadding(12)
                      + "  " + spec.summary)
            }
        }
    }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self + " " : self + String(repeating: " ", count: width - count) }
    func leftPadding(_ width: Int) -> String { count >= width ? " " + self : String(repeating: " ", count: width - count) + self }
}
