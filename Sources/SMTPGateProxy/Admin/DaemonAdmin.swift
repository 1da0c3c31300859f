import SMTPGateCore

/// `smtpgate status`, `reload` and `stop`: one request on the running daemon's control socket.
public enum DaemonAdmin {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public static func status(controlPath: String) throws(Failure) -> DaemonStatus {
        let replies = try send(.status, controlPath)
        guard let status = DaemonStatus(replies: replies) else { throw Failure(description: "unreadable status from the daemon") }
        return status
    }

    /// Returns when the daemon has read the file again; throws with its reason when it kept the running one.
    public static func reload(controlPath: String) throws(Failure) {
        _ = try send(.reload, controlPath, timeout: 60)
    }

    /// Returns once the daemon has begun to drain (it exits when its sessions are done or `shutdown_timeout` passed).
    public static func stop(controlPath: String) throws(Failure) {
        _ = try send(.stop, controlPath)
    }

    private static func send(_ request: ControlRequest, _ path: String, timeout: Int = 10) throws(Failure) -> [ControlReply] {
        do {
            return try ControlClient.send(request, path: path, timeout: timeout)
        } catch {
            switch error {
            case .notRunning: throw Failure(description: "no daemon answers on \(path) (control_path): is smtpgate running?")
            case .failed(let why): throw Failure(description: why)
            }
        }
    }
}
