import Foundation

/// Runs the built `dtrain` executable (alone or under mpirun) from tests, with a time limit so a
/// hang fails the test instead of blocking the suite.
public enum ProcessRunner {
    public struct RunError: Error, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    public struct Run {
        public let status: Int32
        public let output: String
        public let command: String
        public var lines: [String] { output.split(separator: "\n").map(String.init) }
        public var transcript: String { "\(command) exited \(status):\n\(output)" }
    }

    /// The build products directory (where `swift build`/`swift test` put `dtrain`): on macOS the
    /// `*.xctest` bundle sits inside it; on Linux the running test executable is in it.
    public static var productsDirectory: URL {
        let exe = URL(fileURLWithPath: "/proc/self/exe")
        if FileManager.default.fileExists(atPath: exe.path) {
            return exe.resolvingSymlinksInPath().deletingLastPathComponent()
        }
        let bundle = Bundle.main.bundleURL
        return bundle.pathExtension == "xctest" ? bundle.deletingLastPathComponent() : bundle
    }

    public static func locateExecutable(_ name: String = "dtrain") throws -> URL {
        let url = productsDirectory.appendingPathComponent(name)
        guard FileManager.default.isExecutableFile(atPath: url.path) else {
            throw RunError(message: "the `\(name)` executable is not in the build products directory (\(url.path)); "
                           + "run the tests with `swift test -c release` or launch/test, which build it")
        }
        return url
    }

    public static func locateMPIRun() throws -> URL {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":").map(String.init) + ["/usr/bin", "/usr/local/bin"] {
            let url = URL(fileURLWithPath: dir).appendingPathComponent("mpirun")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        throw RunError(message: "mpirun is not on PATH; install openmpi-bin (launch/setup does)")
    }

    /// `mpirun -np ranks [mpiOptions] dtrain arguments…`.
    public static func mpirun(ranks: Int, _ arguments: [String], mpiOptions: [String] = [], timeout: TimeInterval = 120,
                              environment: [String: String] = [:]) throws -> Run {
        let dtrain = try locateExecutable()
        var mpiArguments = ["-np", String(ranks), "--bind-to", "none"]
        if geteuid() == 0 { mpiArguments.append("--allow-run-as-root") }
        // Open MPI counts physical cores as slots; oversubscribing is harmless for small test runs.
        mpiArguments.append("--oversubscribe")
        return try run(locateMPIRun(), mpiArguments + mpiOptions + [dtrain.path] + arguments, timeout: timeout, environment: environment)
    }

    /// A job started in the background, for tests that signal or kill it while it runs.
    public final class BackgroundJob {
        public let process: Process
        private let exited = DispatchSemaphore(value: 0)

        init(_ process: Process) {
            self.process = process
            process.terminationHandler = { [exited] _ in exited.signal() }
        }

        /// Whether the job ended within `timeout` seconds.
        public func waitForExit(timeout: TimeInterval) -> Bool {
            exited.wait(timeout: .now() + timeout) == .success
        }

        /// mpirun's ranks (its child processes), in pid order.
        public var ranks: [Int32] { ProcessRunner.childProcesses(of: process.processIdentifier) }

        /// SIGKILL to mpirun if it still runs (a test's clean-up).
        public func killIfRunning() {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
    }

    /// `mpirun -np ranks dtrain arguments…` started in the background, its output discarded, in the
    /// environment of a process that mpirun did not start.
    public static func startMPIRun(ranks: Int, _ arguments: [String]) throws -> BackgroundJob {
        var mpiArguments = ["-np", String(ranks), "--bind-to", "none", "--oversubscribe"]
        if geteuid() == 0 { mpiArguments.append("--allow-run-as-root") }
        let process = Process()
        process.executableURL = try locateMPIRun()
        process.arguments = mpiArguments + [try locateExecutable().path] + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("OMPI_COMM_WORLD") && !$0.key.hasPrefix("PMIX_") }
        let job = BackgroundJob(process)
        try process.run()
        return job
    }

    /// Processes whose parent is `pid`, from /proc (mpirun's ranks), in pid order.
    public static func childProcesses(of pid: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { p in
            guard let stat = try? String(contentsOfFile: "/proc/\(p)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 2 && Int32(fields[1]) == pid
        }.sorted()
    }

    /// `dtrain arguments…` as a single process.
    public static func dtrain(_ arguments: [String], timeout: TimeInterval = 300, environment: [String: String] = [:]) throws -> Run {
        try run(locateExecutable(), arguments, timeout: timeout, environment: environment)
    }

    /// Runs a program with stdout and stderr captured together; SIGTERM, then SIGKILL, after `timeout`.
    public static func run(_ executable: URL, _ arguments: [String], timeout: TimeInterval,
                           environment: [String: String] = [:]) throws -> Run {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("dtrain-test-\(getpid())-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let sink = try FileHandle(forWritingTo: log)
        defer { try? sink.close() }

        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.standardOutput = sink
        process.standardError = sink
        process.standardInput = FileHandle.nullDevice
        // Child processes learn they run under MPI from mpirun itself, never from the test process.
        var env = ProcessInfo.processInfo.environment.filter { key, _ in !key.hasPrefix("OMPI_COMM_WORLD") && !key.hasPrefix("PMIX_") }
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        let command = ([executable.path] + arguments).joined(separator: " ")
        try process.run()

        var timedOut = false
        if exited.wait(timeout: .now() + timeout) == .timedOut {
            timedOut = true
            process.terminate()
            if exited.wait(timeout: .now() + 10) == .timedOut {
                kill(process.processIdentifier, SIGKILL)
                _ = exited.wait(timeout: .now() + 10)
            }
        }
        let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        let result = Run(status: timedOut ? -1 : process.terminationStatus, output: output, command: command)
        if timedOut { throw RunError(message: "timed out after \(timeout) s (killed): \(result.transcript)") }
        return result
    }
}
