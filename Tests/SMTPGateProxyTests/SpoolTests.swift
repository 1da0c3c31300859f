import Foundation
import NIOCore
import NIOPosix
import SMTPGateCore
import Testing
@testable import SMTPGateProxy

/// The spool against a real directory and thread pool: what a scanner reads back is the un-stuffed message,
/// in order, wherever the memory/file boundary falls; files are owner-only and gone unless kept.
@Suite(.serialized) struct SpoolTests {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let pool = NIOThreadPool(numberOfThreads: 2)
    let dir: String

    init() throws {
        pool.start()
        var template = Array("/tmp/smtpgate-spooltest.XXXXXX".utf8CString)
        dir = try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }.map { String(cString: $0) })
    }

    private func cleanup() {
        try? FileManager.default.removeItem(atPath: dir)
        try? pool.syncShutdownGracefully()
        try? group.syncShutdownGracefully()
    }

    /// Feeds `pieces` (as the client sent them), waits for the spool, reads it back; `then` runs before removal.
    private func roundTrip(_ pieces: [[UInt8]], memoryLimit: Int, name: String = "m.msg",
                           then: @escaping (Spool) -> Void = { _ in }) throws -> [UInt8] {
        let loop = group.next()
        let path = "\(dir)/\(name)"
        return try loop.flatSubmit { () -> EventLoopFuture<[UInt8]> in
            let spool = Spool(path: path, memoryLimit: memoryLimit, loop: loop, pool: pool)
            for p in pieces { p.withUnsafeBytes { spool.append($0) } }
            return spool.finish().flatMap {
                var all: [UInt8] = []
                return spool.forEachChunk(maxChunk: 7, on: loop) { chunk in
                    all += chunk.readableBytesView
                    return loop.makeSucceededVoidFuture()
                }.map {
                    then(spool)
                    return all
                }
            }
        }.wait()
    }

    @Test func orderHoldsWhenAPieceAfterTheBoundaryWouldStillFitInMemory() throws {
        defer { cleanup() }
        let wire = Array(String(repeating: "A", count: 150).utf8) + Array("\r\n..BBBBBBBBBB".utf8)
        let expected = Array(String(repeating: "A", count: 150).utf8) + Array("\r\n.BBBBBBBBBB".utf8)
        #expect(try roundTrip([wire], memoryLimit: 100) == expected)
    }

    @Test(arguments: [0, 1, 5, 64, 1 << 20])
    func unstuffedMessageReadsBackWhateverTheMemoryBound(memoryLimit: Int) throws {
        defer { cleanup() }
        let lines = (0..<200).map { i in i % 3 == 0 ? "..line \(i)\r\n" : "line \(i)\r\n" }
        let wire = Array(lines.joined().utf8)
        let expected = Array(lines.map { $0.hasPrefix("..") ? String($0.dropFirst()) : $0 }.joined().utf8)
        let pieces = stride(from: 0, to: wire.count, by: 13).map { Array(wire[$0..<min($0 + 13, wire.count)]) }
        #expect(try roundTrip(pieces, memoryLimit: memoryLimit) == expected)
    }

    @Test func aFileIsOwnerOnlyAndRemovedAfterwards() throws {
        defer { cleanup() }
        let path = "\(dir)/m.msg"
        var mode: mode_t = 0
        _ = try roundTrip([Array(repeating: 0x41, count: 500) + [13, 10]], memoryLimit: 10) { spool in
            var st = stat()
            if stat(path, &st) == 0 { mode = st.st_mode & 0o777 }
            #expect(spool.hasFile)
            spool.remove()
        }
        #expect(mode == 0o600)
        // The unlink runs on the pool: wait for it, bounded.
        for _ in 0..<100 where access(path, F_OK) == 0 { usleep(10_000) }
        #expect(access(path, F_OK) != 0, "the spool file is gone")
    }

    @Test func aMessageInMemoryLeavesNoFileUnlessKept() throws {
        defer { cleanup() }
        let path = "\(dir)/kept.msg"
        let loop = group.next()
        _ = try roundTrip([Array("small\r\n".utf8)], memoryLimit: 1000, name: "kept.msg") { spool in
            #expect(!spool.hasFile)
        }
        #expect(access(path, F_OK) != 0)
        let kept = try loop.flatSubmit { () -> EventLoopFuture<Bool> in
            let spool = Spool(path: path, memoryLimit: 1000, loop: loop, pool: pool)
            Array("..kept\r\n".utf8).withUnsafeBytes { spool.append($0) }
            return spool.finish().flatMap { spool.keep() }.map { spool.hasFile }
        }.wait()
        #expect(kept)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == ".kept\r\n")
    }

    @Test func anUnwritableSpoolFailsFinishWithTheReason() throws {
        defer { cleanup() }
        let loop = group.next()
        let path = "\(dir)/no-such-dir/m.msg"
        let result = try loop.flatSubmit { () -> EventLoopFuture<Result<Void, Error>> in
            let spool = Spool(path: path, memoryLimit: 0, loop: loop, pool: pool)
            Array("x\r\n".utf8).withUnsafeBytes { spool.append($0) }
            return spool.finish().map { .success(()) }.flatMapErrorThrowing { .failure($0) }
        }.wait()
        guard case .failure(let error) = result else {
            Issue.record("finish succeeded on an unwritable spool")
            return
        }
        #expect("\(error)".hasPrefix("cannot create \(path): No such file or directory"))
    }

    @Test func finishCompletesWhenTheSessionEndsWhileTheFileIsOpening() throws {
        defer { cleanup() }
        let loop = group.next()
        let path = "\(dir)/open.msg"
        let finished = try loop.flatSubmit { () -> EventLoopFuture<Bool> in
            let spool = Spool(path: path, memoryLimit: 100, loop: loop, pool: pool)
            [UInt8](repeating: 0x41, count: 500).withUnsafeBytes { spool.append($0) }
            let f = spool.finish()
            spool.remove()
            let bounded = loop.makePromise(of: Bool.self)
            var settled = false
            func settle(_ value: Bool) {
                guard !settled else { return }
                settled = true
                bounded.succeed(value)
            }
            f.whenComplete { _ in settle(true) }
            loop.scheduleTask(in: .seconds(3)) { settle(false) }
            return bounded.futureResult
        }.wait()
        #expect(finished, "finish() completes after remove() during the file's creation")
        for _ in 0..<100 where access(path, F_OK) == 0 { usleep(10_000) }
        #expect(access(path, F_OK) != 0, "the file created after the session ended is removed")
    }
}
