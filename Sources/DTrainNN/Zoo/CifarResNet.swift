/// The CIFAR ResNets of He et al. 2016 (6n+2 layers: 16-32-64 channels, three stages of n basic
/// blocks), named in torchvision's style: conv1, bn1, layer1…layer3, fc.
/// Shortcut A (the paper's) is parameter-free; B projects with a 1×1 convolution and BatchNorm
/// (named downsample.0/.1), as in the CIFAR seed.
enum CifarResNet {
    static func make(blocksPerStage n: Int, shortcut: CifarShortcut, spec: ModelSpec, options: ModelOptions) -> Layer {
        let root = Sequential([
            ("conv1", Blocks.conv(3, 16, kernel: 3, padding: 1)),
            ("bn1", Blocks.bn(16)),
            ("relu", ReLU()),
        ])
        var inC = 16
        for (stage, outC) in [16, 32, 64].enumerated() {
            var blocks: [Layer] = []
            for b in 0..<n {
                let stride = b == 0 && stage > 0 ? 2 : 1
                var sc: Layer?
                if stride != 1 || inC != outC {
                    switch shortcut {
                    case .a: sc = PadShortcut(inChannels: inC, outChannels: outC, stride: stride)
                    case .b: sc = Sequential(indexed: [Blocks.conv(inC, outC, kernel: 1, stride: stride), Blocks.bn(outC)])
                    }
                }
                blocks.append(Residual(main: Sequential([
                    ("conv1", Blocks.conv(inC, outC, kernel: 3, stride: stride, padding: 1)),
                    ("bn1", Blocks.bn(outC)),
                    ("relu", ReLU()),
                    ("conv2", Blocks.conv(outC, outC, kernel: 3, padding: 1)),
                    ("bn2", Blocks.bn(outC, zeroWeight: options.zeroInitResidual)),
                ]), shortcut: sc))
                inC = outC
            }
            root.append("layer\(stage + 1)", Sequential(indexed: blocks))
        }
        for (name, layer) in Blocks.head(features: 64, classes: spec.classes(options)) { root.append(name, layer) }
        return root
    }
}

extension ModelZoo {
    static let cifarResNets: [ModelSpec] = [3, 5, 7, 9, 18, 200].flatMap { n -> [ModelSpec] in
        let depth = 6 * n + 2
        return [CifarShortcut.a, .b].map { shortcut in
            ModelSpec(name: shortcut == .a ? "resnet\(depth)" : "resnet\(depth)_b", family: .cifar,
                      defaultResolution: 32, defaultClasses: 10,
                      summary: "CIFAR ResNet-\(depth), shortcut \(shortcut.rawValue)") { spec, options in
                CifarResNet.make(blocksPerStage: n, shortcut: options.cifarShortcut ?? shortcut, spec: spec, options: options)
            }
        }
    }
}
