#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix
import SMTPGateCore

/// One message as the recipient will see it (un-stuffed), kept in memory up to `spool_memory` and in an
/// owner-only file under `spool_path` beyond that. All file work runs on the thread pool; the event loop
/// only hands buffers over. Lives on its session's event loop.
final class Spool: MessageSource {
    /// Bytes handed to the file and not yet written, above which the client is no longer read.
    static let backlogLimit = 1 << 20

    let path: String
    private let loop: EventLoop
    private let pool: NIOThreadPool
    private let memoryLimit: Int
    private var unstuffer = DotUnstuffer()
    private var memory: ByteBuffer
    private var pending: ByteBuffer
    private var writing = 0
    private var fd: CInt?
    private var opening = false
    private var onDisk = false
    private var failure: String?
    private var finishPromise: EventLoopPromise<Void>?
    private var removed = false
    private(set) var size = 0
    /// Called once the backlog fell below the limit again.
    var onDrained: (() -> Void)?

    /// `spool_perm`, exactly (the umask does not narrow it).
    private let mode: Int

    init(path: String, memoryLimit: Int, loop: EventLoop, pool: NIOThreadPool, mode: Int = 0o600) {
        self.path = path
        self.mode = mode
        self.memoryLimit = memoryLimit
        self.loop = loop
        self.pool = pool
        memory = ByteBufferAllocator().buffer(capacity: min(memoryLimit, 64 * 1024))
        pending = ByteBufferAllocator().buffer(capacity: 0)
    }

    var isBackedUp: Bool { pending.readableBytes + writing > Self.backlogLimit }

    /// Whether the message is (also) in a file: a kept spool's `SPOOL_NAME`.
    var hasFile: Bool { onDisk }

    /// Puts a header line of the proxy's own first (`spool_header`): already un-stuffed, before any body byte.
    func prepend(header: [UInt8]) {
        precondition(size == 0, "the spool header goes before the message")
        size = header.count
        memory.writeBytes(header)
    }

    /// Adds body bytes as the client sent them (dot-stuffed).
    func append(_ bytes: UnsafeRawBufferPointer) {
        guard failure == nil, !removed else { return }
        unstuffer.unstuff(bytes) { r in
            let piece = UnsafeRawBufferPointer(rebasing: bytes[r])
            size += piece.count
            // Once anything went past memory, everything after it must follow it there, in order.
            let inMemory = fd == nil && !opening && pending.readableBytes == 0
                && memory.readableBytes + piece.count <= memoryLimit
            if inMemory {
                memory.writeBytes(piece)
            } else {
                pending.writeBytes(piece)
            }
        }
        if fd == nil, !opening, pending.readableBytes > 0 { openFile() }
        flush()
    }

    /// Succeeds when every byte is where it belongs; fails with the reason the spool could not hold it.
    func finish() -> EventLoopFuture<Void> {
        if let failure { return loop.makeFailedFuture(SpoolError(failure)) }
        if !opening, writing == 0, pending.readableBytes == 0 {
            closeWriter()
            return loop.makeSucceededFuture(())
        }
        let p = loop.makePromise(of: Void.self)
        finishPromise = p
        return p.futureResult
    }

    /// Puts a message still in memory into its file too, so it outlives the session (`spool_leave_on`).
    func keep() -> EventLoopFuture<Void> {
        guard !onDisk else { return loop.makeSucceededFuture(()) }
        let (data, path, mode) = (memory, self.path, self.mode)
        return pool.runIfActive(eventLoop: loop) {
            let fd = try Self.create(path, mode: mode)
            defer { close(fd) }
            try Self.writeAll(fd, data)
        }.map { self.onDisk = true }
    }

    /// Deletes the file, if there is one; the spool takes nothing more. A file still being opened is
    /// deleted when the open completes; a descriptor still being written is closed when the write returns.
    func remove() {
        guard !removed else { return }
        removed = true
        pending.clear()
        memory.clear()
        if let p = finishPromise {
            finishPromise = nil
            p.fail(SpoolError("the session ended"))
        }
        if writing == 0 { closeWriter() }
        guard onDisk, !opening else { return }
        let path = self.path
        pool.submit { _ in _ = unlink(path) }
    }

    // MARK: - MessageSource

    func forEachChunk(maxChunk: Int, on loop: EventLoop,
                      _ body: @escaping (ByteBuffer) -> EventLoopFuture<Void>) -> EventLoopFuture<Void> {
        if !onDisk {
            return Self.feed(memory, maxChunk: maxChunk, on: loop, body)
        }
        let path = self.path
        let total = size
        let pool = self.pool
        return pool.runIfActive(eventLoop: loop) { () throws -> CInt in
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw SpoolError("cannot open \(path): \(errnoText())") }
            return fd
        }.flatMap { fd in
            Self.readFrom(fd, offset: 0, total: total, maxChunk: maxChunk, pool: pool, on: loop, body)
                .always { _ in pool.submit { _ in close(fd) } }
        }
    }

    private static func feed(_ data: ByteBuffer, maxChunk: Int, on loop: EventLoop,
                             _ body: @escaping (ByteBuffer) -> EventLoopFuture<Void>) -> EventLoopFuture<Void> {
        var rest = data
        guard rest.readableBytes > 0, let chunk = rest.readSlice(length: min(maxChunk, rest.readableBytes)) else {
            return loop.makeSucceededFuture(())
        }
        return body(chunk).flatMap { feed(rest, maxChunk: maxChunk, on: loop, body) }
    }

    private static func readFrom(_ fd: CInt, offset: Int, total: Int, maxChunk: Int, pool: NIOThreadPool, on loop: EventLoop,
                                 _ body: @escaping (ByteBuffer) -> EventLoopFuture<Void>) -> EventLoopFuture<Void> {
        guard offset < total else { return loop.makeSucceededFuture(()) }
        let want = min(maxChunk, total - offset)
        return pool.runIfActive(eventLoop: loop) { () throws -> ByteBuffer in
            var buf = ByteBufferAllocator().buffer(capacity: want)
            var failed: Int32 = 0
            let n = buf.writeWithUnsafeMutableBytes(minimumWritableBytes: want) { ptr in
                let got = pread(fd, ptr.baseAddress, want, off_t(offset))
                if got < 0 { failed = errno }
                return max(got, 0)
            }
            guard n > 0 else {
                throw SpoolError(failed != 0 ? "cannot read the spool file: \(errnoText(failed))" : "short read from the spool file")
            }
            return buf
        }.flatMap { chunk in
            let next = offset + chunk.readableBytes
            return body(chunk).flatMap { readFrom(fd, offset: next, total: total, maxChunk: maxChunk, pool: pool, on: loop, body) }
        }
    }

    // MARK: - Writing

    private func openFile() {
        opening = true
        let (path, head, mode) = (self.path, memory, self.mode)
        pool.runIfActive(eventLoop: loop) { () throws -> CInt in
            let fd = try Self.create(path, mode: mode)
            do {
                try Self.writeAll(fd, head)
            } catch {
                close(fd)
                throw error
            }
            return fd
        }.whenComplete { result in
            self.opening = false
            switch result {
            case .success(let fd):
                self.onDisk = true
                if self.removed {
                    self.pool.submit { _ in
                        close(fd)
                        _ = unlink(path)
                    }
                    return
                }
                self.fd = fd
                self.memory.clear()
                self.flush()
            case .failure(let error):
                self.fail(error)
            }
        }
    }

    private func flush() {
        guard let fd, writing == 0, pending.readableBytes > 0, failure == nil else {
            checkDone()
            return
        }
        let data = pending
        pending = ByteBufferAllocator().buffer(capacity: 0)
        writing = data.readableBytes
        pool.runIfActive(eventLoop: loop) {
            try Self.writeAll(fd, data)
        }.whenComplete { result in
            let wasBackedUp = self.isBackedUp
            self.writing = 0
            if self.removed {
                self.closeWriter()
                return
            }
            switch result {
            case .success:
                if wasBackedUp, !self.isBackedUp { self.onDrained?() }
                self.flush()
            case .failure(let error):
                self.fail(error)
            }
        }
    }

    private func checkDone() {
        guard let p = finishPromise, !opening, writing == 0, pending.readableBytes == 0 || failure != nil else { return }
        finishPromise = nil
        if let failure {
            p.fail(SpoolError(failure))
        } else {
            closeWriter()
            p.succeed(())
        }
    }

    private func fail(_ error: Error) {
        failure = (error as? SpoolError)?.reason ?? "\(error)"
        pending.clear()
        onDrained?()
        checkDone()
    }

    private func closeWriter() {
        if let fd {
            self.fd = nil
            pool.submit { _ in close(fd) }
        }
    }

    private static func create(_ path: String, mode: Int) throws -> CInt {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_t(mode))
        guard fd >= 0 else { throw SpoolError("cannot create \(path): \(errnoText())") }
        _ = fchmod(fd, mode_t(mode))
        return fd
    }

    private static func writeAll(_ fd: CInt, _ data: ByteBuffer) throws {
        try data.withUnsafeReadableBytes { ptr in
            var done = 0
            while done < ptr.count {
                let n = write(fd, ptr.baseAddress! + done, ptr.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw SpoolError("cannot write the spool file: \(errnoText())")
                }
                done += n
            }
        }
    }
}

struct SpoolError: Error, CustomStringConvertible {
    let reason: String
    init(_ reason: String) { self.reason = reason }
    var description: String { reason }
}
