import SMTPGateCore

/// The bytes a segment list stands for. `.input` ranges must lie inside the buffer just fed and keep its order
/// (each starts at or after the previous one's end: no byte twice, none reordered); a call that fed no buffer
/// (`input` nil) must not produce any.
public func resolve(_ segments: [MachineOutput.Segment], input: [UInt8]?, _ what: String) -> [UInt8] {
    var out: [UInt8] = []
    var floor = 0
    for segment in segments {
        switch segment {
        case .bytes(let bytes):
            out += bytes
        case .input(let r):
            guard let input else { fatalError("invariant: \(what) has .input(\(r)) but no buffer was fed") }
            check(r.lowerBound >= floor && r.upperBound <= input.count,
                  "\(what) has .input(\(r)) outside \(floor)..<\(input.count)")
            out += input[r]
            floor = r.upperBound
        }
    }
    return out
}
