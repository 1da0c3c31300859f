/// What to show of client-supplied identities (`log_helo`, `log_mail_from`, `log_rcpt_to`).
public struct LogPolicy: Sendable {
    public var helo: Bool
    public var mailFrom: Config.AddressLogging
    public var rcptTo: Config.AddressLogging
    /// `syslog_name`: the name text lines carry instead of `smtpgate`.
    public var tag: String?
    /// `email_length`: the most bytes of an address a line shows.
    public var emailLength = Config.maxEmailLength

    public init(helo: Bool, mailFrom: Config.AddressLogging, rcptTo: Config.AddressLogging, tag: String? = nil) {
        self.tag = tag
        self.helo = helo
        self.mailFrom = mailFrom
        self.rcptTo = rcptTo
    }

    public init(config: Config) {
        self.init(helo: config.logHelo, mailFrom: config.logMailFrom, rcptTo: config.logRcptTo, tag: config.syslogName)
        emailLength = config.emailLength
    }

    /// An address (in its escaped form) cut to `emailLength` bytes, never inside an escape, with `...` after
    /// it when cut, so that a reader does not take it for the whole address.
    public func address(_ escaped: String) -> String {
        guard escaped.utf8.count > emailLength else { return escaped }
        var out = ""
        var used = 0
        var rest = Substring(escaped)
        while let c = rest.first {
            let unit = c == "\\" ? rest.prefix(4) : rest.prefix(1)
            let size = unit.utf8.count
            guard used + size <= emailLength else { break }
            out += unit
            used += size
            rest = rest.dropFirst(unit.count)
        }
        return out + "..."
    }
}

/// The session's log lines. One place decides their names and fields.
public enum SessionLog {
    /// The line an event gets, if any (a finding is the action script's; its cause has its own line).
    /// Every line of a session names its listener right after the session, so a line read alone (a
    /// `transaction`, a `lock`) still says which listener's policy made it.
    public static func record(for event: ProxyEvent, policy: LogPolicy) -> LogRecord? {
        guard var line = line(for: event, policy: policy) else { return nil }
        if let c = event.context, line.fields.first?.0 == "session", !line.fields.contains(where: { $0.0 == "listener" }) {
            line.fields.insert(("listener", .text(c.listener)), at: 1)
        }
        return line
    }

    private static func line(for event: ProxyEvent, policy: LogPolicy) -> LogRecord? {
        switch event {
        case .opened(let c): return open(c)
        case .warned(let c, let r):
            guard var line = line(for: .refused(c, r), policy: policy) else { return nil }
            line.event = "reject_warning"
            return line
        case .refused(let c, let r):
            switch r {
            case .tooManyConnections(let n), .tooManyFromHost(let n): return reject(c, reason: r.why.rawValue, limit: n)
            case .lookupFailed(let reason, _): return lookupFailed(c, reason: reason)
            case .connectFailed(_, let reason): return connectFailed(c, error: reason)
            case .loop: return nil
            case .tooManyFromIdent(let n): return reject(c, reason: r.why.rawValue, limit: n)
            case .locked(let lock):
                return LogRecord(.notice, "reject", base(c) + [("reason", .text(r.why.rawValue))] + lockFields(lock))
            case .rateLimited(let e):
                return LogRecord(.notice, "reject", base(c) + [("reason", .text(r.why.rawValue))] + rateFields(e))
            case .dnsblListed(let v):
                return LogRecord(.notice, "reject", base(c) + [
                    ("reason", .text(r.why.rawValue)), ("score", .int(v.score)), ("threshold", .int(v.threshold)),
                    ("sites", .text(v.zones.joined(separator: ","))),
                ])
            case .earlyTalker(let bytes):
                return LogRecord(.notice, "reject", base(c) + [("reason", .text(r.why.rawValue)), ("bytes", .int(bytes))])
            case .destinationRefused(let code, _, _, let rule):
                return LogRecord(.notice, "reject", base(c) + [
                    ("reason", .text(r.why.rawValue)), ("dest", .text(c.destination)), ("code", .int(code)),
                    ("rule", .text(LogEscape.escape(rule))),
                ])
            case .loadTooHigh(let load, let limit):
                return LogRecord(.notice, "reject", base(c) + [
                    ("reason", .text(r.why.rawValue)), ("load", .text(String(load))), ("limit", .text(String(limit))),
                ])
            }
        case .session(let c, let e): return self.event(e, c, policy: policy)
        case .scanned(let c, let trans, let report, let scanPolicy): return scan(c, transaction: trans, report, policy: scanPolicy)
        case .spoolFailed(let c, let error): return spoolFailed(c, error: error)
        case .found: return nil
        case .commandRefused(let c, let r): return commandRefused(c, r, policy: policy)
        case .spfChecked(let c, let v):
            var fields = base(c) + [("result", .text(v.result.rawValue)), ("ip", .text(v.ip))]
            if policy.mailFrom.logs(code: v.result == .fail ? 550 : 250) { fields.append(("from", .text(v.sender.isEmpty ? "<>" : policy.address(v.sender)))) }
            fields.append(("reason", .text(LogEscape.escape(v.reason))))
            return LogRecord(v.result == .pass || v.result == .none ? .info : .notice, "spf", fields)
        case .redirected(let c, let to, let rule):
            return LogRecord(.notice, "redirect", base(c) + [
                ("dest", .text(c.destination)), ("to", .text(to)), ("rule", .text(LogEscape.escape(rule))),
            ])
        case .policyNote(let c, let point, let n):
            var line = commandRefused(c, CommandRefusal(point: point, reply: PolicyReply(code: 0, enhanced: nil, text: "", why: .restriction)),
                                      policy: policy)
            switch n.kind {
            case .warn: line.event = "map_warn"
            case .info: line.event = "map_info"
            case .serviceFailed: line.event = "policy_service_failed"
            }
            line.fields.removeAll { $0.0 == "code" || $0.0 == "reason" }
            line.fields += [("rule", .text(LogEscape.escape(n.rule))), ("text", .text(LogEscape.escape(n.text)))]
            return line
        case .rateLimited(let c, let e):
            return LogRecord(.notice, "ratelimit", [("session", .text(c.id)), ("client", .text(c.client))]
                + (c.facts.rateKey.map { [("key", LogRecord.Value.text($0.description))] } ?? []) + rateFields(e))
        case .locked(let c, let lock, let source, _):
            var fields: [(String, LogRecord.Value)] = c.map { [("session", .text($0.id))] } ?? []
            fields.append(("key", .text(lock.key.description)))
            fields += lockFields(lock)
            fields += [("reason", .text(LogEscape.escape(lock.reason))), ("source", .text(LogEscape.escape(source)))]
            return LogRecord(.notice, "lock", fields)
        case .unlocked(let lock, let source):
            return LogRecord(.notice, "unlock", [
                ("key", .text(lock.key.description)), ("lock_cause", .text(lock.cause.rawValue)),
                ("source", .text(LogEscape.escape(source))),
            ])
        case .closed(let c, let totals): return close(c, totals, policy: policy)
        }
    }

    public static func open(_ c: SessionContext) -> LogRecord {
        var fields: [(String, LogRecord.Value)] = [
            ("session", .text(c.id)), ("listener", .text(c.listener)), ("client", .text(c.client)),
        ]
        if let nat = c.natSource { fields.append(("nat_source", .text(nat))) }
        if let ident = c.ident { fields.append(("ident", .text(ident))) }
        fields += [("local", .text(c.local)), ("dest", .text(c.destination))]
        return LogRecord(.info, "open", fields)
    }

    static func base(_ c: SessionContext) -> [(String, LogRecord.Value)] {
        [("session", .text(c.id)), ("listener", .text(c.listener)), ("client", .text(c.client))]
    }

    static func lockFields(_ lock: ClientLock) -> [(String, LogRecord.Value)] {
        [("lock_cause", .text(lock.cause.rawValue)), ("lock_until", .text(lock.expires.map(isoTime) ?? "removed"))]
    }

    static func rateFields(_ e: RateExceeded) -> [(String, LogRecord.Value)] {
        [("kind", .text(e.kind.rawValue)), ("count", .int(e.count)), ("limit", .int(e.window.limit)),
         ("window", .int(e.window.seconds))]
    }

    /// `2026-12-02T16:25:11Z`: one word in a log line, sortable as text.
    public static func isoTime(_ t: Double) -> String {
        ActionEvent.utcTime(ActionEvent.unixSeconds(t)).replacingSpace() + "Z"
    }

    /// The destination could not be found (no original destination, helper silent or refusing).
    public static func lookupFailed(_ c: SessionContext, reason: String) -> LogRecord {
        LogRecord(.warning, "lookup_failed", [
            ("session", .text(c.id)), ("listener", .text(c.listener)), ("client", .text(c.client)),
            ("local", .text(c.local)), ("error", .text(LogEscape.escape(reason))),
        ])
    }

    static func commandRefused(_ c: SessionContext, _ r: CommandRefusal, policy: LogPolicy) -> LogRecord {
        var fields = base(c)
        switch r.point {
        case .hello(let name):
            fields.append(("command", .text("helo")))
            if policy.helo { fields.append(("helo", .text(name))) }
        case .mail(let from):
            fields.append(("command", .text("mail")))
            if policy.mailFrom.logs(code: r.reply.code) { fields.append(("from", .text(policy.address(from)))) }
        case .rcpt(let to):
            fields.append(("command", .text("rcpt")))
            if policy.rcptTo.logs(code: r.reply.code) { fields.append(("to", .text(policy.address(to)))) }
        case .data:
            fields.append(("command", .text("data")))
        case .endOfData(let size):
            fields += [("command", .text("data_end")), ("size", .int(size))]
        }
        fields += [("code", .int(r.reply.code)), ("reason", .text(r.reply.why.rawValue))]
        if let rule = r.rule { fields.append(("rule", .text(LogEscape.escape(rule)))) }
        if let error = r.error { fields.append(("error", .text(LogEscape.escape(error)))) }
        if r.warning { fields.append(("reply", .text(LogEscape.escape(r.reply.text)))) }
        return LogRecord(.notice, r.warning ? "reject_warning" : "reject", fields)
    }

    public static func reject(_ c: SessionContext, reason: String, limit: Int) -> LogRecord {
        LogRecord(.notice, "reject", [
            ("session", .text(c.id)), ("listener", .text(c.listener)), ("client", .text(c.client)),
            ("reason", .text(reason)), ("limit", .int(limit)),
        ])
    }

    public static func connectFailed(_ c: SessionContext, error: String) -> LogRecord {
        LogRecord(.warning, "connect_failed", [
            ("session", .text(c.id)), ("client", .text(c.client)), ("dest", .text(c.destination)),
            ("error", .text(LogEscape.escape(error))),
        ])
    }

    /// The line of a session event; a reply code alone has none (the transaction line carries it).
    public static func event(_ e: SessionEvent, _ c: SessionContext, policy: LogPolicy) -> LogRecord? {
        switch e {
        case .transaction(let t):
            var fields: [(String, LogRecord.Value)] = [
                ("session", .text(c.id)), ("client", .text(c.client)), ("dest", .text(c.destination)),
            ]
            if let n = t.number { fields.append(("trans", .int(n))) }
            if policy.helo, let helo = t.helo { fields.append(("helo", .text(helo))) }
            if policy.mailFrom.logs(code: t.mailCode) {
                fields.append(("from", .text(t.mailFrom.isEmpty ? "<>" : policy.address(t.mailFrom))))
            }
            if let code = t.mailCode { fields.append(("mail", .int(code))) }
            let shown = t.recipients.filter { policy.rcptTo.logs(code: $0.code) }.map {
                LogRecord.Recipient(address: policy.address($0.address), code: $0.code)
            }
            if !shown.isEmpty { fields.append(("rcpt", .recipients(shown))) }
            fields.append(("rcpts", .int(t.recipientCount)))
            if t.unlistedRecipients > 0 { fields.append(("rcpts_unlisted", .int(t.unlistedRecipients))) }
            fields.append(("size", .int(t.size)))
            if let scan = t.scan {
                fields.append(("scan", .text(scan.result.rawValue)))
                if let virus = scan.virus { fields.append(("virus", .text(virus))) }
                if let score = scan.score { fields.append(("score", .text(String(score)))) }
            }
            if let code = t.resultCode {
                fields.append(("result", .int(code)))
            } else {
                fields.append(("result", .text("aborted")))
                if let why = t.abortReason { fields.append(("why", .text(why))) }
            }
            return LogRecord(.info, "transaction", fields)
        case .takeover(let reason):
            return LogRecord(.notice, "takeover", [("session", .text(c.id)), ("reason", .text(LogEscape.escape(reason)))])
        case .startTLS:
            return LogRecord(.info, "starttls", [("session", .text(c.id))])
        case .unsolicitedReply(let code, let text):
            return LogRecord(.warning, "protocol_error", [
                ("session", .text(c.id)), ("dest", .text(c.destination)), ("reason", .text("unsolicited_reply")),
                ("code", .int(code)), ("reply", .text(text)),
            ])
        case .replied:
            return nil
        case .limitReached(let limit, let value):
            return LogRecord(.notice, "limit", [
                ("session", .text(c.id)), ("client", .text(c.client)), ("limit", .text(limit)), ("value", .int(value)),
            ])
        }
    }

    /// One scanner's answer for one message.
    public static func scan(_ c: SessionContext, transaction: Int?, _ r: ScanReport, policy: ScanPolicy) -> LogRecord {
        var fields: [(String, LogRecord.Value)] = [("session", .text(c.id))]
        if let transaction { fields.append(("trans", .int(transaction))) }
        fields.append(("scanner", .text(r.scanner.rawValue)))
        var extra: [(String, LogRecord.Value)] = []
        let result: String
        var level = LogRecord.Level.info
        switch r.result {
        case .clean:
            result = "clean"
        case .virus(let name):
            result = "virus"
            level = .notice
            extra.append(("virus", .text(LogEscape.escape(name))))
        case .score(let score):
            let spam = policy.isSpam(score)
            result = spam ? "spam" : "clean"
            if spam { level = .notice }
            extra += [("score", .text(String(score))), ("threshold", .text(String(policy.spamThreshold)))]
        case .skipped(let why):
            result = "skipped"
            extra.append(("why", .text(LogEscape.escape(why))))
        case .failed(let why):
            result = "error"
            level = .warning
            extra.append(("error", .text(LogEscape.escape(why))))
        }
        fields += [("result", .text(result)), ("time", .seconds(r.seconds)), ("size", .int(r.size))]
        return LogRecord(level, "scan", fields + extra)
    }

    /// The spool could not hold a message (the message gets 451 4.3.0).
    public static func spoolFailed(_ c: SessionContext, error: String) -> LogRecord {
        LogRecord(.error, "spool_failed", [("session", .text(c.id)), ("error", .text(LogEscape.escape(error)))])
    }

    public struct Totals: Sendable {
        public var helo: String?
        public var transactions: Int
        public var bytesIn: Int
        public var bytesOut: Int
        public var duration: Double
        public var closedBy: String
        public var reason: String
        public var takeover: String?

        public init(helo: String?, transactions: Int, bytesIn: Int, bytesOut: Int, duration: Double,
                    closedBy: String, reason: String, takeover: String? = nil) {
            self.takeover = takeover
            self.helo = helo
            self.transactions = transactions
            self.bytesIn = bytesIn
            self.bytesOut = bytesOut
            self.duration = duration
            self.closedBy = closedBy
            self.reason = reason
        }
    }

    public static func close(_ c: SessionContext, _ t: Totals, policy: LogPolicy) -> LogRecord {
        var fields: [(String, LogRecord.Value)] = [
            ("session", .text(c.id)), ("listener", .text(c.listener)), ("client", .text(c.client)),
            ("dest", .text(c.destination)),
        ]
        if policy.helo, let helo = t.helo { fields.append(("helo", .text(helo))) }
        fields += [
            ("trans", .int(t.transactions)), ("bytes_in", .int(t.bytesIn)), ("bytes_out", .int(t.bytesOut)),
            ("duration", .seconds(t.duration)), ("closed_by", .text(t.closedBy)), ("reason", .text(t.reason)),
        ]
        if let takeover = t.takeover { fields.append(("takeover", .text(LogEscape.escape(takeover)))) }
        return LogRecord(.info, "close", fields)
    }
}

extension String {
    fileprivate func replacingSpace() -> String {
        String(map { $0 == " " ? "T" : $0 })
    }
}
