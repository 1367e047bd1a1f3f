/// torchvision's VGG-16 and VGG-16-BN: features.N (convolutions, BatchNorms, ReLUs and max-pools,
/// indexed as in torchvision), avgpool to 7×7, classifier.0/.3/.6 with dropout between.
enum VGG {
    static let config16: [Int?] = [64, 64, nil, 128, 128, nil, 256, 256, 256, nil, 512, 512, 512, nil, 512, 512, 512, nil]

    static func make(batchNorm: Bool, spec: ModelSpec, options: ModelOptions) -> Layer {
        var features: [Layer] = []
        var inC = 3
        for entry in config16 {
            guard let outC = entry else {
                features.append(MaxPool2d(kernelSize: 2, stride: 2))
                continue
            }
            features.append(Blocks.conv(inC, outC, kernel: 3, padding: 1, bias: true))
            if batchNorm { features.append(Blocks.bn(outC)) }
            features.append(ReLU())
            inC = outC
        }
        // Distinct keys, so the two same-shaped dropouts draw different masks.
        let dropout1 = Dropout(p: 0.5), dropout2 = Dropout(p: 0.5)
        dropout1.key = 1
        dropout2.key = 2
        let classifier = Sequential(indexed: [
            Blocks.linear(512 * 7 * 7, 4096, normalStd: 0.01), ReLU(), dropout1,
            Blocks.linear(4096, 4096, normalStd: 0.01), ReLU(), dropout2,
            Blocks.linear(4096, spec.classes(options), normalStd: 0.01),
        ])
        return Sequential([
            ("features", Sequential(indexed: features)),
            ("avgpool", AdaptiveAvgPool2d(outputSize: 7)),
            ("flatten", Flatten()),
            ("classifier", classifier),
        ])
    }
}

extension ModelZoo {
    static let vgg16 = ModelSpec(name: "vgg16", family: .imagenet, defaultResolution: 224, defaultClasses: 1000,
                                 summary: "VGG-16") { VGG.make(batchNorm: false, spec: $0, options: $1) }
    static let vgg16BN = ModelSpec(name: "vgg16_bn", family: .imagenet, defaultResolution: 224, defaultClasses: 1000,
                                   summary: "VGG-16 with BatchNorm") { VGG.make(batchNorm: true, spec: $0, options: $1) }
}
