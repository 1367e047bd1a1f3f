/// torchvision's MobileNetV2 (width 1.0): features.0 (3×3/2 conv, BN, ReLU6), seventeen inverted
/// residuals features.1…17 (conv.N…), features.18 (1×1 conv to 1280), classifier.1 after dropout 0.2.
enum MobileNetV2 {
    /// Expansion t, output channels c, repeats n, first stride s.
    static let settings: [(t: Int, c: Int, n: Int, s: Int)] = [
        (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
    ]

    /// Conv2dNormActivation: conv (no bias), BatchNorm, ReLU6, indexed 0/1/2.
    static func convBNReLU6(_ inC: Int, _ outC: Int, kernel: Int, stride: Int = 1, groups: Int = 1) -> Sequential {
        Sequential(indexed: [Blocks.conv(inC, outC, kernel: kernel, stride: stride, padding: (kernel - 1) / 2, groups: groups),
                             Blocks.bn(outC), ReLU6()])
    }

    static func invertedResidual(_ inC: Int, _ outC: Int, stride: Int, expand: Int) -> Layer {
        let hidden = inC * expand
        var layers: [Layer] = []
        if expand != 1 { layers.append(convBNReLU6(inC, hidden, kernel: 1)) }
        layers.append(convBNReLU6(hidden, hidden, kernel: 3, stride: stride, groups: hidden))
        layers.append(Blocks.conv(hidden, outC, kernel: 1))
        layers.append(Blocks.bn(outC))
        let main = Sequential([("conv", Sequential(indexed: layers))])
        return stride == 1 && inC == outC ? Residual(main: main, shortcut: nil, reluAfterAdd: false) : main
    }

    static func make(spec: ModelSpec, options: ModelOptions) -> Layer {
        var features: [Layer] = [convBNReLU6(3, 32, kernel: 3, stride: 2)]
        var inC = 32
        for setting in settings {
            for i in 0..<setting.n {
                features.append(invertedResidual(inC, setting.c, stride: i == 0 ? setting.s : 1, expand: setting.t))
                inC = setting.c
            }
        }
        features.append(convBNReLU6(inC, 1280, kernel: 1))
        return Sequential([
            ("features", Sequential(indexed: features)),
            ("avgpool", AdaptiveAvgPool2d(outputSize: 1)),
            ("flatten", Flatten()),
            ("classifier", Sequential(indexed: [Dropout(p: 0.2), Blocks.linear(1280, spec.classes(options), normalStd: 0.01)])),
        ])
    }
}

extension ModelZoo {
    static let mobileNetV2 = ModelSpec(name: "mobilenet_v2", family: .imagenet, defaultResolution: 224, defaultClasses: 1000,
                                       summary: "MobileNetV2 1.0") { MobileNetV2.make(spec: $0, options: $1) }
}
