import ArgumentParser
import DTrainCore
import Foundation

@main
struct DTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dtrain",
        abstract: "Data-parallel ResNet/ResNeXt training on CPU clusters over Open MPI.",
        version: dtrainVersion,
        subcommands: [TrainCommand.self, EvalCommand.self, PredictCommand.self, ImportCommand.self, ExportCommand.self, ModelsCommand.self, BenchCommand.self,
                      BenchDataCommand.self, StatsCommand.self, DatasetCommand.self, ReportCommand.self, SelfTestCollectives.self, SelfTestSyncBN.self],
        defaultSubcommand: TrainCommand.self)

    /// `--resume` takes an optional path: given alone (at the end, or before another flag) it
    /// means the output directory's checkpoint-last, spelled `--resume-last` for the parser.
    ///
    /// What `ParsableCommand.main` does, except that a Foundation file error escaping a command
    /// is printed as "FILE: reason" (`MessageText.describe`), never as "NSCocoaErrorDomain error N".
    static func main() {
        do {
            var command = try parseAsRoot(normalizedArguments(Array(CommandLine.arguments.dropFirst())))
            try command.run()
        } catch {
            exit(withError: FileErrorMessage.readable(error))
        }
    }

    /// The command line as the parser should see it:
    /// - a negative number after a long option is that option's value (`--lr -1` reads as
    ///   `--lr=-1`, so the option's own check names it, instead of "missing value");
    /// - `--resume` alone (at the end, or before another flag) becomes `--resume-last`.
    static func normalizedArguments(_ input: [String]) -> [String] {
        var arguments: [String] = []
        var i = 0
        while i < input.count {
            let a = input[i]
            let next = i + 1 < input.count ? input[i + 1] : nil
            if a.hasPrefix("--"), !a.contains("="), let value = next, value.hasPrefix("-"), Double(value) != nil, a != "--" {
                arguments.append("\(a)=\(value)")
                i += 2
                continue
            }
            if a == "--resume" && (next == nil || next!.hasPrefix("-")) {
                arguments.append("--resume-last")
            } else {
                arguments.append(a)
            }
            i += 1
        }
        return arguments
    }
}

/// A Foundation error turned into the one-line message the user sees.
struct FileErrorMessage: Error, CustomStringConvertible {
    let description: String

    /// `error` itself, unless it is one of Foundation's file errors (Cocoa or POSIX domain).
    static func readable(_ error: Error) -> Error {
        let domain = (error as NSError).domain
        guard domain == NSCocoaErrorDomain || domain == NSPOSIXErrorDomain else { return error }
        return FileErrorMessage(description: MessageText.describe(error))
    }
}
