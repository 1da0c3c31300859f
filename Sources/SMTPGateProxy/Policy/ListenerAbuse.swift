import SMTPGateCore

/// Abuse control as one listener's sessions see it: the locks are the daemon's (a client locked on one
/// listener is locked on all), the rate counters and `lock_on` are the listener's when its section sets
/// its own. Carrying the name here keeps every check and count of a session on its listener's counters.
struct ListenerAbuse: Sendable {
    let control: AbuseControl
    let listener: String

    var source: String { control.source }
    var lockSettings: LockSettings { control.lockSettings(listener: listener) }

    func keys(address: [UInt8], ident: String?) -> (lock: ClientKey, rate: ClientKey)? {
        control.keys(address: address, ident: ident)
    }

    func activeLock(_ key: ClientKey) -> ClientLock? { control.activeLock(key) }

    func lock(_ key: ClientKey, for finding: Finding.Kind) -> ClientLock? {
        control.lock(key, for: finding, listener: listener)
    }

    func exceeded(_ key: ClientKey, _ kinds: [RateKind]) -> RateExceeded? {
        control.exceeded(key, kinds, listener: listener)
    }

    func record(_ key: ClientKey, _ kind: RateKind, amount: Double = 1) {
        control.record(key, kind, amount: amount, listener: listener)
    }

    func admitConnection(_ key: ClientKey, to destination: String) -> RateExceeded? {
        control.admitConnection(key, to: destination, listener: listener)
    }
}
