import CPCRE2

/// A compiled PCRE2 pattern (Perl semantics, as smtp-gated's `regex_*`), matched against client text with
/// limits: a pattern that backtracks without end on hostile input stops at `matchLimit` steps, and that
/// is a result of its own, never a stall. Matching is by bytes (no UTF mode: client text may be any bytes).
public final class PCRERegex: @unchecked Sendable, Equatable, CustomStringConvertible {
    public enum Result: Sendable, Equatable {
        case match
        case noMatch
        /// A match, depth or heap limit was hit, or PCRE failed otherwise: the answer is unknown.
        case failed(String)
    }

    /// Compile options beyond case: the access-map tables (pcre_table(5), regexp_table(5)) toggle these.
    public struct Flags: OptionSet, Sendable, Hashable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let caseless = Flags(rawValue: UInt32(PCRE2_CASELESS))
        public static let multiline = Flags(rawValue: UInt32(PCRE2_MULTILINE))
        public static let dotAll = Flags(rawValue: UInt32(PCRE2_DOTALL))
        public static let extended = Flags(rawValue: UInt32(PCRE2_EXTENDED))
        public static let anchored = Flags(rawValue: UInt32(PCRE2_ANCHORED))
        public static let dollarEndOnly = Flags(rawValue: UInt32(PCRE2_DOLLAR_ENDONLY))
        public static let ungreedy = Flags(rawValue: UInt32(PCRE2_UNGREEDY))
    }

    /// A match with the byte ranges of the subject that each capture group took (nil: the group did
    /// not take part), or no match, or the answer is unknown as for `Result.failed`.
    public enum Groups: Sendable, Equatable {
        case match([Range<Int>?])
        case noMatch
        case failed(String)
    }

    /// Steps of the matcher at most; a well-behaved pattern on a 512-byte address needs a few thousand.
    public static let matchLimit: UInt32 = 100_000
    public static let depthLimit: UInt32 = 1_000
    /// Kibibytes of backtracking memory at most.
    public static let heapLimitKiB: UInt32 = 1_024
    public static let maxPatternLength = 4_096

    public let pattern: String
    public let caseless: Bool
    public let flags: Flags
    /// Capture groups in the pattern (`$1`.. in an access map's result may name no more).
    public let captureCount: Int
    /// Immutable after init; PCRE2 allows matching one compiled pattern and one match context from many
    /// threads at once (each match has its own match data).
    private let code: OpaquePointer
    private let context: OpaquePointer

    public struct CompileError: Error, CustomStringConvertible {
        public let description: String
    }

    /// `caseless` as smtp-gated compiles them: host names and addresses are compared without case.
    public convenience init(_ pattern: String, caseless: Bool = true) throws(CompileError) {
        try self.init(pattern, flags: caseless ? [.caseless] : [])
    }

    public init(_ pattern: String, flags: Flags) throws(CompileError) {
        let bytes = Array(pattern.utf8)
        let length = bytes.count
        guard bytes.count <= Self.maxPatternLength else {
            throw CompileError(description: "the pattern is \(bytes.count) bytes; at most \(Self.maxPatternLength)")
        }
        guard !bytes.contains(0) else { throw CompileError(description: "the pattern contains a NUL byte") }
        var err: Int32 = 0
        var offset = 0
        let options = flags.rawValue
        // PCRE2 reads no byte of a zero-length pattern or subject, but wants a pointer: hence the padding byte.
        let compiled = (bytes + [0]).withUnsafeBufferPointer { b in
            pcre2_compile_8(b.baseAddress, length, options, &err, &offset, nil)
        }
        guard let compiled else {
            throw CompileError(description: "\(Self.message(err)) at offset \(offset)")
        }
        guard let ctx = pcre2_match_context_create_8(nil) else {
            pcre2_code_free_8(compiled)
            throw CompileError(description: "out of memory")
        }
        pcre2_set_match_limit_8(ctx, Self.matchLimit)
        pcre2_set_depth_limit_8(ctx, Self.depthLimit)
        pcre2_set_heap_limit_8(ctx, Self.heapLimitKiB)
        var count: UInt32 = 0
        pcre2_pattern_info_8(compiled, UInt32(PCRE2_INFO_CAPTURECOUNT), &count)
        self.pattern = pattern
        self.flags = flags
        self.caseless = flags.contains(.caseless)
        self.captureCount = Int(count)
        self.code = compiled
        self.context = ctx
    }

    deinit {
        pcre2_match_context_free_8(context)
        pcre2_code_free_8(code)
    }

    public func match(_ subject: some Collection<UInt8>) -> Result {
        execute(subject) { rc, _, _ -> Result in
            if rc >= 0 { return .match }
            if rc == PCRE2_ERROR_NOMATCH { return .noMatch }
            return .failed(Self.message(rc))
        } ?? .failed("out of memory")
    }

    public func groups(_ subject: some Collection<UInt8>) -> Groups {
        execute(subject) { rc, data, length -> Groups in
            if rc == PCRE2_ERROR_NOMATCH { return .noMatch }
            guard rc >= 0 else { return .failed(Self.message(rc)) }
            guard let ovector = pcre2_get_ovector_pointer_8(data) else { return .failed("no match data") }
            // rc is one more than the highest group that took part (match data sized from the pattern
            // is never too small, so it is not 0); PCRE2_UNSET is all ones, negative as Swift's Int.
            let used = Int(rc)
            return .match((0..<captureCount).map { i -> Range<Int>? in
                let group = i + 1
                let start = ovector[2 * group], end = ovector[2 * group + 1]
                guard group < used, start >= 0, start <= end, end <= length else { return nil }
                return start..<end
            })
        } ?? .failed("out of memory")
    }

    /// One match with fresh match data; `answer` reads PCRE's return code and the data. nil when the
    /// match data cannot be allocated.
    private func execute<T>(_ subject: some Collection<UInt8>, _ answer: (Int32, OpaquePointer, Int) -> T) -> T? {
        guard let data = pcre2_match_data_create_from_pattern_8(code, nil) else { return nil }
        defer { pcre2_match_data_free_8(data) }
        var bytes = Array(subject)
        let length = bytes.count
        bytes.append(0)
        let rc = bytes.withUnsafeBufferPointer { b in
            pcre2_match_8(code, b.baseAddress, length, 0, 0, data, context)
        }
        return answer(rc, data, length)
    }

    public var description: String { pattern }

    public static func == (a: PCRERegex, b: PCRERegex) -> Bool { a.pattern == b.pattern && a.flags == b.flags }

    private static func message(_ code: Int32) -> String {
        var buf = [UInt8](repeating: 0, count: 256)
        let n = buf.withUnsafeMutableBufferPointer { pcre2_get_error_message_8(code, $0.baseAddress, $0.count) }
        return n > 0 ? String(decoding: buf.prefix(Int(n)), as: UTF8.self) : "PCRE2 error \(code)"
    }
}
