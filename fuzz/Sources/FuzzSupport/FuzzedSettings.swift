import SMTPGateCore

extension SessionObserver {
    /// The proxy name of every fuzzed session: its own replies read `CODE [x.y.z] gate.fuzz: TEXT`.
    public static let proxyName = "gate.fuzz"

    /// A session whose settings are the next two bytes: small pipelines and takeover budgets, STARTTLS
    /// forbidden or not, a scanner (held final dot) or not, a size limit, short command lines and a small hold
    /// limit (so the long-line and pause paths are reached by short inputs), a `nat_header` or not.
    public static func fuzzed(_ input: inout FuzzInput) -> SessionObserver {
        let a = input.byte(), b = input.byte()
        var s = SessionSettings(proxyName: proxyName, pipelineSize: [1, 3, 8, 128][Int(a & 3)],
                                onTakeoverCmds: [0, 2, 10, 10][Int(a >> 2 & 3)], forbidStartTLS: a & 0x10 != 0)
        s.holdFinalDot = a & 0x20 != 0
        s.sizeLimit = [nil, 40, 4096, nil][Int(a >> 6)]
        s.maxCommandLine = b & 1 != 0 ? 32 : 16 * 1024
        s.holdLimit = b & 2 != 0 ? 24 : 64 * 1024
        return SessionObserver(settings: s, natHeader: b & 4 != 0 ? Array(ascii: "X-Nat-Fuzz: yes\r\n") : nil)
    }
}
