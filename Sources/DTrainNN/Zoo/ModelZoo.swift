/// Which recipe and data a model is meant for.
public enum ModelFamily: String, Sendable {
    /// 224-pixel ImageNet-style models (torchvision).
    case imagenet
    /// 32-pixel CIFAR models.
    case cifar
}

/// Shortcut of the CIFAR ResNets of He et al.: A is parameter-free (subsample + zero channels),
/// B a 1×1 projection with BatchNorm.
public enum CifarShortcut: String, Sendable {
    case a = "A", b = "B"
}

/// Options that change a model's structure or initialisation.
public struct ModelOptions: Sendable {
    /// Classes of the head; nil means the family's default (1000 or 10).
    public var numClasses: Int?
    /// Zero the last BatchNorm of each residual block (torchvision's zero_init_residual).
    public var zeroInitResidual: Bool
    /// Overrides the CIFAR ResNet shortcut type.
    public var cifarShortcut: CifarShortcut?

    public init(numClasses: Int? = nil, zeroInitResidual: Bool = false, cifarShortcut: CifarShortcut? = nil) {
        self.numClasses = numClasses
        self.zeroInitResidual = zeroInitResidual
        self.cifarShortcut = cifarShortcut
    }
}

/// An entry of the zoo: how to make a model and what it expects.
public struct ModelSpec: Sendable {
    public let name: String
    public let family: ModelFamily
    public let defaultResolution: Int
    public let defaultClasses: Int
    public let inputChannels = 3
    public let summary: String
    let builder: @Sendable (ModelSpec, ModelOptions) -> Layer

    func make(_ options: ModelOptions) -> Layer { builder(self, options) }
    func classes(_ options: ModelOptions) -> Int { options.numClasses ?? defaultClasses }
}

/// An unknown model name; the message lists the zoo.
public struct UnknownModelError: Error, CustomStringConvertible {
    public let name: String
    public var description: String {
        "unknown model '\(name)'; available: \(ModelZoo.names.joined(separator: ", "))"
    }
}

/// The registry of models by name.
public enum ModelZoo {
    public static let specs: [ModelSpec] = torchvisionResNets + cifarResNets + cifarResNeXts + [vgg16, vgg16BN, mobileNetV2]

    public static var names: [String] { specs.map(\.name) }

    public static func spec(named name: String) throws -> ModelSpec {
        guard let spec = specs.first(where: { $0.name == name }) else { throw UnknownModelError(name: name) }
        return spec
    }

    /// Makes (but does not build or initialise) the model `name`.
    public static func make(_ name: String, options: ModelOptions = ModelOptions()) throws -> Model {
        Model(spec: try spec(named: name), options: options)
    }
}
