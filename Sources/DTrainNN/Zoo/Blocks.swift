/// Small constructors shared by the zoo's models.
enum Blocks {
    /// Convolution initialised as torchvision's models do (kaiming normal, fan_out; zero bias).
    static func conv(_ inC: Int, _ outC: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                     dilation: Int = 1, groups: Int = 1, bias: Bool = false) -> Conv2d {
        let c = Conv2d(inChannels: inC, outChannels: outC, kernelSize: kernel, stride: stride,
                       padding: padding, dilation: dilation, groups: groups, bias: bias)
        c.bias?.initializer = .constant(0)
        return c
    }

    /// BatchNorm, optionally with its weight initialised to zero (zero_init_residual).
    static func bn(_ channels: Int, zeroWeight: Bool = false) -> BatchNorm2d {
        let b = BatchNorm2d(channels: channels)
        if zeroWeight { b.weight.initializer = .constant(0) }
        return b
    }

    /// nn.Linear with its default initialisation, or N(0, std) weights and zero bias.
    static func linear(_ inF: Int, _ outF: Int, normalStd: Float? = nil) -> Linear {
        let l = Linear(inFeatures: inF, outFeatures: outF)
        if let std = normalStd {
            l.weight.initializer = .normal(std: std)
            l.bias?.initializer = .constant(0)
        }
        return l
    }

    /// avgpool → flatten → fc, as torchvision's heads.
    static func head(features: Int, classes: Int, name: String = "fc") -> [(String, Layer)] {
        [("avgpool", AdaptiveAvgPool2d(outputSize: 1)), ("flatten", Flatten()), (name, linear(features, classes))]
    }
}
