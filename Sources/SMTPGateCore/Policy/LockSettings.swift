/// Which findings lock a client and for how long: `lock_on` and `lock_duration` as one value.
public struct LockSettings: Sendable, Equatable {
    public var causes: Set<LockCause>
    /// Seconds; 0 is no locks, -1 until removed.
    public var duration: Int

    public init(causes: Set<LockCause>, duration: Int) {
        self.causes = causes
        self.duration = duration
    }

    public init(config: Config) {
        self.init(causes: config.lockOn, duration: config.lockDuration)
    }

    public func locks(_ cause: LockCause) -> Bool {
        duration != 0 && causes.contains(cause)
    }
}
