#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import SMTPGateCore

/// In a listening socket's pipeline: a spare descriptor, and what the socket does when accept() fails
/// (`AcceptFailures`). NIO keeps the socket open on EMFILE, ENFILE, ENOBUFS and ENOMEM and, with the
/// client still in the backlog, would try again on every turn of the loop; here a pause turns reading off
/// (autoRead) and a timer turns it back on, and on EMFILE/ENFILE the spare is closed so that the waiting
/// client can be accepted and refused (`refuses`), then opened again once that connection is closed.
/// Any connection accepted while the spare cannot be had, or with no descriptor left for its session's
/// connection to the destination, is refused the same way: it would get a 421 4.4.1 for want of one.
/// This guesses, the table being the process's and the other loops' accepts and sessions taking from it
/// at any moment; the guess errs towards 421 4.3.2 and the spare, never towards spinning.
/// One per listening socket; everything here runs on its event loop, which is also its sessions' loop.
final class DescriptorReserve: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Channel
    typealias InboundOut = Channel

    private let listener: String
    private let log: (LogRecord) -> Void
    /// Opens a descriptor to keep; -1 with errno set when none is free.
    private let openDescriptor: () -> CInt
    private var failures = AcceptFailures()
    private var spare: CInt = -1
    /// The connection to refuse, until the child initializer asks about it.
    private var refusing: ObjectIdentifier?
    /// A connection was accepted since the socket was last found readable (NIO accepts several a turn).
    private var acceptedThisTurn = false
    private var resume: Scheduled<Void>?
    private var reportTimer: Scheduled<Void>?
    /// Set when the handler leaves the pipeline: a late close of a refused connection must not reopen the spare.
    private var removed = false

    init(listener: String, log: @escaping (LogRecord) -> Void,
         openDescriptor: @escaping () -> CInt = { open("/dev/null", O_RDONLY | O_CLOEXEC) }) {
        self.listener = listener
        self.log = log
        self.openDescriptor = openDescriptor
    }

    /// For the child initializer: whether `child` is the connection to refuse for want of descriptors.
    static func refuses(_ child: Channel) -> Bool {
        guard let parent = child.parent,
              let reserve = try? parent.pipeline.syncOperations.handler(type: DescriptorReserve.self) else { return false }
        return reserve.takeRefusal(of: child)
    }

    func takeRefusal(of child: Channel) -> Bool {
        guard refusing == ObjectIdentifier(child) else { return false }
        refusing = nil
        return true
    }

    var holdsSpare: Bool { spare >= 0 }

    func handlerAdded(context: ChannelHandlerContext) {
        openSpare()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        removed = true
        resume?.cancel()
        reportTimer?.cancel()
        if let r = failures.finalReport() { log(ListenerLog.acceptFailed(listener: listener, r)) }
        closeSpare()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard let io = error as? IOError, let cause = AcceptFailures.Cause(errno: io.errnoCode) else {
            context.fireErrorCaught(error)
            return
        }
        switch failures.failed(cause, errno: io.errnoCode, spareHeld: holdsSpare, acceptedThisTurn: acceptedThisTurn,
                               now: context.eventLoop.now.uptimeNanoseconds) {
        case .nothing:
            return
        case .acceptOnSpare:
            // The socket stays readable and NIO accepts again on the next turn: into this slot.
            closeSpare()
        case .pause(let until):
            pause(context, until: .uptimeNanoseconds(until))
        }
        report(context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let child = unwrapInboundIn(data)
        acceptedThisTurn = true
        if failures.accepted(shortage: shortage()) {
            let id = ObjectIdentifier(child)
            refusing = id
            child.closeFuture.assumeIsolated().whenComplete { _ in
                // Closed before the initializer asked (its options failed): the identifier must not outlive it.
                if self.refusing == id { self.refusing = nil }
                self.refusalClosed(context)
            }
            report(context)
        }
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        acceptedThisTurn = false
        context.fireChannelReadComplete()
    }

    private func pause(_ context: ChannelHandlerContext, until: NIODeadline) {
        try? context.channel.syncOptions?.setOption(.autoRead, value: false)
        resume?.cancel()
        resume = context.eventLoop.assumeIsolated().scheduleTask(deadline: until) { self.resumeAccepting(context) }
    }

    private func resumeAccepting(_ context: ChannelHandlerContext) {
        resume = nil
        openSpare()
        try? context.channel.syncOptions?.setOption(.autoRead, value: true)
    }

    /// The refused connection's slot is free: it becomes the spare again, and a pause that waited for it ends.
    private func refusalClosed(_ context: ChannelHandlerContext) {
        guard !removed, !holdsSpare else { return }
        openSpare()
        if holdsSpare, let waiting = resume {
            waiting.cancel()
            resumeAccepting(context)
        }
    }

    private func report(_ context: ChannelHandlerContext) {
        if let r = failures.report(now: context.eventLoop.now.uptimeNanoseconds) {
            log(ListenerLog.acceptFailed(listener: listener, r))
        }
        guard reportTimer == nil, let due = failures.reportDue else { return }
        reportTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: .uptimeNanoseconds(due)) {
            self.reportTimer = nil
            self.report(context)
        }
    }

    /// Takes the spare (back), if it is not held and a descriptor is free.
    private func openSpare() {
        guard !holdsSpare else { return }
        spare = openDescriptor()
    }

    /// Nil when the spare is held (taken back if need be) and one more descriptor is free, for the session's
    /// connection onward: the accept may have taken the last one, or the slot another loop's spare or refusal
    /// had just left. Otherwise the errno of the open that failed.
    private func shortage() -> Int32? {
        openSpare()
        guard holdsSpare else { return errno }
        let probe = openDescriptor()
        guard probe >= 0 else { return errno }
        close(probe)
        return nil
    }

    private func closeSpare() {
        guard holdsSpare else { return }
        close(spare)
        spare = -1
    }
}
