import FuzzSupport
import SMTPGateCore

// DotUnstuffer fed a body in fuzzer-chosen pieces gives exactly what `DataReference.unstuff` gives for the whole
// body: its state carries across calls, so no cut (not even between CR and LF) changes the result. The pieces
// it emits are ranges of the buffer just fed, in order.
fuzzMain { data in
    var input = FuzzInput(data)
    let pieces = input.chunkedRest()
    var unstuffer = DotUnstuffer()
    var out: [UInt8] = []
    for piece in pieces {
        piece.withUnsafeBytes { buf in
            var floor = 0
            unstuffer.unstuff(buf) { r in
                check(r.lowerBound >= floor && r.upperBound <= buf.count, "range \(r) after \(floor) in \(buf.count) bytes")
                floor = r.upperBound
                out += buf[r]
            }
        }
    }
    let expected = DataReference.unstuff(pieces.flatMap { $0 })
    check(out == expected, "unstuffed \(show(out)), expected \(show(expected))")
}
