/// Feeds a reply reader `pieces` one by one and returns its answer after the last: a reader of a scanner's
/// answer may say nothing yet (nil), but once it has answered, more bytes must never change the answer.
public func settledAnswer<Answer: Equatable>(_ pieces: [[UInt8]], feed: ([UInt8]) -> Answer?,
                                             file: StaticString = #fileID, line: UInt = #line) -> Answer? {
    var answer: Answer?
    for piece in pieces {
        let now = feed(piece)
        if let answer {
            check(now == answer, "answer changed from \(answer) to \(String(describing: now))", file: file, line: line)
        }
        answer = now
    }
    return answer
}
