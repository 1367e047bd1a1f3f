/// CIFAR ResNeXt-29 of Xie et al. (three stages of three bottlenecks; cardinality, base width,
/// widen factor 4), with the ResNeXt seed's names: conv_1_3x3, bn_1,
/// stage_N.stage_N_bottleneck_K.{conv_reduce, bn_reduce, conv_conv, bn, conv_expand, bn_expand,
/// shortcut.shortcut_conv, shortcut.shortcut_bn}, classifier.
enum CifarResNeXt {
    static func make(cardinality: Int, baseWidth: Int, widenFactor: Int = 4, depth: Int = 29,
                     spec: ModelSpec, options: ModelOptions) -> Layer {
        let blockDepth = (depth - 2) / 9
        let stages = [64, 64 * widenFactor, 128 * widenFactor, 256 * widenFactor]
        let root = Sequential([
            ("conv_1_3x3", Blocks.conv(3, 64, kernel: 3, padding: 1)),
            ("bn_1", Blocks.bn(64)),
            ("relu", ReLU()),
        ])
        for s in 1...3 {
            let name = "stage_\(s)"
            let stage = Sequential([])
            for b in 0..<blockDepth {
                let inC = b == 0 ? stages[s - 1] : stages[s]
                let outC = stages[s]
                let stride = b == 0 && s > 1 ? 2 : 1
                let widthRatio = Double(outC) / (Double(widenFactor) * 64)
                let d = cardinality * Int(Double(baseWidth) * widthRatio)
                var shortcut: Layer?
                if inC != outC {
                    shortcut = Sequential([("shortcut_conv", Blocks.conv(inC, outC, kernel: 1, stride: stride)),
                                           ("shortcut_bn", Blocks.bn(outC))])
                }
                stage.append("\(name)_bottleneck_\(b)", Residual(main: Sequential([
                    ("conv_reduce", Blocks.conv(inC, d, kernel: 1)),
                    ("bn_reduce", Blocks.bn(d)),
                    ("relu_reduce", ReLU()),
                    ("conv_conv", Blocks.conv(d, d, kernel: 3, stride: stride, padding: 1, groups: cardinality)),
                    ("bn", Blocks.bn(d)),
                    ("relu", ReLU()),
                    ("conv_expand", Blocks.conv(d, outC, kernel: 1)),
                    ("bn_expand", Blocks.bn(outC, zeroWeight: options.zeroInitResidual)),
                ]), shortcut: shortcut, shortcutName: "shortcut"))
            }
            root.append(name, stage)
        }
        // The seed initialises the classifier with kaiming_normal (fan_in) and a zero bias.
        let classifier = Blocks.linear(stages[3], spec.classes(options))
        classifier.weight.initializer = .kaimingNormalFanIn(fanIn: stages[3])
        classifier.bias?.initializer = .constant(0)
        root.append("avgpool", AdaptiveAvgPool2d(outputSize: 1))
        root.append("flatten", Flatten())
        root.append("classifier", classifier)
        return root
    }
}

extension ModelZoo {
    static let cifarResNeXts: [ModelSpec] = [8, 16].map { cardinality in
        ModelSpec(name: "resnext29_\(cardinality)x64d", family: .cifar, defaultResolution: 32, defaultClasses: 10,
                  summary: "CIFAR ResNeXt-29 \(cardinality)x64d") {
            CifarResNeXt.make(cardinality: cardinality, baseWidth: 64, spec: $0, options: $1)
        }
    }
}
