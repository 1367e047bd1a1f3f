/// torchvision's ResNet v1.5 family (stride on the 3×3 convolution), with torchvision's names:
/// conv1, bn1, relu, maxpool, layer1…layer4 (blocks "0", "1", … with conv1/bn1/…, downsample.0/.1), fc.
enum TorchvisionResNet {
    enum BlockKind { case basic, bottleneck }

    struct Config {
        let block: BlockKind
        let layers: [Int]
        let groups: Int
        let widthPerGroup: Int
    }

    static func make(_ config: Config, spec: ModelSpec, options: ModelOptions) -> Layer {
        let expansion = config.block == .basic ? 1 : 4
        var inplanes = 64
        let root = Sequential([
            ("conv1", Blocks.conv(3, 64, kernel: 7, stride: 2, padding: 3)),
            ("bn1", Blocks.bn(64)),
            ("relu", ReLU()),
            ("maxpool", MaxPool2d(kernelSize: 3, stride: 2, padding: 1)),
        ])
        for (stage, (planes, blocks)) in zip([64, 128, 256, 512], config.layers).enumerated() {
            let stride = stage == 0 ? 1 : 2
            var layer: [Layer] = []
            for b in 0..<blocks {
                let s = b == 0 ? stride : 1
                var downsample: Layer?
                if b == 0 && (s != 1 || inplanes != planes * expansion) {
                    downsample = Sequential(indexed: [Blocks.conv(inplanes, planes * expansion, kernel: 1, stride: s),
                                                      Blocks.bn(planes * expansion)])
                }
                layer.append(block(config, inplanes: inplanes, planes: planes, stride: s,
                                   downsample: downsample, zeroInit: options.zeroInitResidual))
                inplanes = planes * expansion
            }
            root.append("layer\(stage + 1)", Sequential(indexed: layer))
        }
        for (name, layer) in Blocks.head(features: 512 * expansion, classes: spec.classes(options)) {
            root.append(name, layer)
        }
        return root
    }

    static func block(_ c: Config, inplanes: Int, planes: Int, stride: Int, downsample: Layer?, zeroInit: Bool) -> Layer {
        switch c.block {
        case .basic:
            return Residual(main: Sequential([
                ("conv1", Blocks.conv(inplanes, planes, kernel: 3, stride: stride, padding: 1)),
                ("bn1", Blocks.bn(planes)),
                ("relu", ReLU()),
                ("conv2", Blocks.conv(planes, planes, kernel: 3, padding: 1)),
                ("bn2", Blocks.bn(planes, zeroWeight: zeroInit)),
            ]), shortcut: downsample)
        case .bottleneck:
            let width = Int(Double(planes) * (Double(c.widthPerGroup) / 64.0)) * c.groups
            return Residual(main: Sequential([
                ("conv1", Blocks.conv(inplanes, width, kernel: 1)),
                ("bn1", Blocks.bn(width)),
                ("relu1", ReLU()),
                ("conv2", Blocks.conv(width, width, kernel: 3, stride: stride, padding: 1, groups: c.groups)),
                ("bn2", Blocks.bn(width)),
                ("relu2", ReLU()),
                ("conv3", Blocks.conv(width, planes * 4, kernel: 1)),
                ("bn3", Blocks.bn(planes * 4, zeroWeight: zeroInit)),
            ]), shortcut: downsample)
        }
    }

    static func spec(_ name: String, _ config: Config, _ summary: String) -> ModelSpec {
        ModelSpec(name: name, family: .imagenet, defaultResolution: 224, defaultClasses: 1000, summary: summary) {
            make(config, spec: $0, options: $1)
        }
    }
}

extension ModelZoo {
    static let torchvisionResNets: [ModelSpec] = [
        TorchvisionResNet.spec("resnet18", .init(block: .basic, layers: [2, 2, 2, 2], groups: 1, widthPerGroup: 64), "ResNet-18"),
        TorchvisionResNet.spec("resnet34", .init(block: .basic, layers: [3, 4, 6, 3], groups: 1, widthPerGroup: 64), "ResNet-34"),
        TorchvisionResNet.spec("resnet50", .init(block: .bottleneck, layers: [3, 4, 6, 3], groups: 1, widthPerGroup: 64), "ResNet-50 v1.5"),
        TorchvisionResNet.spec("resnet101", .init(block: .bottleneck, layers: [3, 4, 23, 3], groups: 1, widthPerGroup: 64), "ResNet-101 v1.5"),
        TorchvisionResNet.spec("resnet152", .init(block: .bottleneck, layers: [3, 8, 36, 3], groups: 1, widthPerGroup: 64), "ResNet-152 v1.5"),
        TorchvisionResNet.spec("resnext50_32x4d", .init(block: .bottleneck, layers: [3, 4, 6, 3], groups: 32, widthPerGroup: 4), "ResNeXt-50 32x4d"),
        TorchvisionResNet.spec("resnext101_32x8d", .init(block: .bottleneck, layers: [3, 4, 23, 3], groups: 32, widthPerGroup: 8), "ResNeXt-101 32x8d"),
        TorchvisionResNet.spec("resnext101_64x4d", .init(block: .bottleneck, layers: [3, 4, 23, 3], groups: 64, widthPerGroup: 4), "ResNeXt-101 64x4d"),
        TorchvisionResNet.spec("wide_resnet50_2", .init(block: .bottleneck, layers: [3, 4, 6, 3], groups: 1, widthPerGroup: 128), "Wide ResNet-50-2"),
        TorchvisionResNet.spec("wide_resnet101_2", .init(block: .bottleneck, layers: [3, 4, 23, 3], groups: 1, widthPerGroup: 128), "Wide ResNet-101-2"),
    ]
}
