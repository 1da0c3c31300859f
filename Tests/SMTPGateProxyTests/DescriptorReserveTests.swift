#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOEmbedded
import SMTPGateCore
import Testing
@testable import SMTPGateProxy

/// One listening socket's pipeline on an embedded loop, made in the test that uses it (the loop belongs
/// to the thread that made it). `full` stands for a full descriptor table: the spare cannot be opened.
final class ReserveFixture {
    final class State {
        var records: [LogRecord] = []
        var full = false
    }

    let loop = EmbeddedEventLoop()
    let state = State()
    let reserve: DescriptorReserve
    let server: EmbeddedChannel

    var records: [LogRecord] { state.records }
    var full: Bool {
        get { state.full }
        set { state.full = newValue }
    }

    init() throws {
        reserve = DescriptorReserve(listener: "main", log: { [state] in state.records.append($0) },
                                    openDescriptor: { [state] in
                                        guard !state.full else {
                                            errno = EMFILE
                                            return -1
                                        }
                                        return open("/dev/null", O_RDONLY | O_CLOEXEC)
                                    })
        server = EmbeddedChannel(loop: loop)
        try server.pipeline.syncOperations.addHandler(reserve)
    }

    /// A turn in which the first accept() fails.
    func fail(_ code: Int32) {
        server.pipeline.fireErrorCaught(IOError(errnoCode: code, reason: "accept"))
        server.pipeline.fireChannelReadComplete()
    }

    /// A turn with one connection accepted; `refused`: the child initializer is told to refuse it.
    func accept() throws -> (EmbeddedChannel, refused: Bool) {
        let child = EmbeddedChannel(loop: loop)
        server.pipeline.fireChannelRead(child as Channel)
        server.pipeline.fireChannelReadComplete()
        let forwarded = try #require(try server.readInbound(as: Channel.self))
        #expect(forwarded === child)
        return (child, reserve.takeRefusal(of: child))
    }

    func close(_ child: EmbeddedChannel) {
        child.close(promise: nil)
        loop.run()
    }
}

/// The handler in a listening socket's pipeline, fed the errors and accepted channels NIO's
/// ServerSocketChannel would fire, on an embedded loop whose clock the test moves.
@Suite struct DescriptorReserveTests {
    static let emfileLine = "accept_failed error=\"Too many open files\""

    @Test func emfileGivesUpTheSpareForARefusalAndTakesItBackWhenThatCloses() throws {
        let t = try ReserveFixture()
        #expect(t.reserve.holdsSpare)
        t.full = true
        t.fail(EMFILE)
        #expect(!t.reserve.holdsSpare)
        #expect(throws: Never.self) { try t.server.throwIfErrorCaught() }
        let (child, refused) = try t.accept()
        #expect(refused)
        #expect(!t.reserve.takeRefusal(of: child))
        #expect(!t.reserve.holdsSpare)
        t.full = false
        t.close(child)
        #expect(t.reserve.holdsSpare)
        let (next, served) = try t.accept()
        #expect(!served)
        t.close(next)
        #expect(t.records.map(\.description) == ["\(Self.emfileLine) failed=1 listener=main refused=0"])
        // The refusal is reported with the next line, a second after the first.
        t.loop.advanceTime(by: .milliseconds(999))
        #expect(t.records.count == 1)
        t.loop.advanceTime(by: .milliseconds(1))
        #expect(t.records.last?.description == "\(Self.emfileLine) failed=0 listener=main refused=1")
    }

    @Test func everyConnectionAcceptedWhileTheSpareCannotBeHadIsRefused() throws {
        let t = try ReserveFixture()
        t.full = true
        t.fail(EMFILE)
        // Another loop's freed spare let a second one in, in the same turn or the next.
        let refusals = try [t.accept(), t.accept()]
        #expect(refusals.map(\.refused) == [true, true])
        t.full = false
        let (served, refused) = try t.accept()
        #expect(!refused)
        #expect(t.reserve.holdsSpare)
        (refusals.map(\.0) + [served]).forEach(t.close)
    }

    @Test func aConnectionThatTookTheLastDescriptorIsRefused() throws {
        let t = try ReserveFixture()
        // Spare held, but nothing left for the session's connection to the destination.
        t.full = true
        let (child, refused) = try t.accept()
        #expect(refused)
        #expect(t.reserve.holdsSpare)
        t.close(child)
        t.full = false
        #expect(try t.accept().refused == false)
        t.loop.advanceTime(by: .seconds(1))
        #expect(t.records.map(\.description) == ["\(Self.emfileLine) failed=0 listener=main refused=1"])
    }

    @Test func withoutTheSpareItPausesAndTakesTheSpareBackWhenThePauseEnds() throws {
        let t = try ReserveFixture()
        t.full = true
        t.fail(EMFILE)
        // The freed slot went to another thread: this accept fails too.
        t.fail(EMFILE)
        t.loop.advanceTime(by: .milliseconds(10))
        #expect(!t.reserve.holdsSpare)
        t.fail(EMFILE)
        t.full = false
        t.loop.advanceTime(by: .milliseconds(19))
        #expect(!t.reserve.holdsSpare)
        t.loop.advanceTime(by: .milliseconds(1))
        #expect(t.reserve.holdsSpare)
    }

    @Test func theRefusedConnectionsSlotBecomesTheSpareAgainDuringAPause() throws {
        let t = try ReserveFixture()
        t.full = true
        t.fail(EMFILE)
        let (child, refused) = try t.accept()
        #expect(refused)
        // The next client arrives while the refused connection still holds the spare's slot.
        t.fail(EMFILE)
        t.full = false
        t.close(child)
        #expect(t.reserve.holdsSpare)
    }

    @Test func aFailureAfterAnAcceptInTheSameTurnIsLeftToTheNextTurn() throws {
        let t = try ReserveFixture()
        let child = EmbeddedChannel(loop: t.loop)
        t.server.pipeline.fireChannelRead(child as Channel)
        t.server.pipeline.fireErrorCaught(IOError(errnoCode: EMFILE, reason: "accept"))
        t.server.pipeline.fireChannelReadComplete()
        _ = try t.server.readInbound(as: Channel.self)
        #expect(t.reserve.holdsSpare)
        #expect(t.records.isEmpty)
        t.fail(EMFILE)
        #expect(!t.reserve.holdsSpare)
        #expect(t.records.count == 1)
    }

    @Test func otherErrorsGoOnDownThePipeline() throws {
        let t = try ReserveFixture()
        t.server.pipeline.fireErrorCaught(IOError(errnoCode: ECONNABORTED, reason: "accept"))
        #expect(throws: IOError.self) { try t.server.throwIfErrorCaught() }
        #expect(t.reserve.holdsSpare)
        #expect(t.records.isEmpty)
    }

    @Test func leavingThePipelineWritesWhatIsLeftAndClosesTheSpareForGood() throws {
        let t = try ReserveFixture()
        t.full = true
        t.fail(EMFILE)
        let (child, _) = try t.accept()
        _ = try t.server.pipeline.syncOperations.removeHandler(t.reserve).wait()
        #expect(t.records.map(\.description) == [
            "\(Self.emfileLine) failed=1 listener=main refused=0", "\(Self.emfileLine) failed=0 listener=main refused=1",
        ])
        t.full = false
        t.close(child)
        #expect(!t.reserve.holdsSpare)
        t.loop.advanceTime(by: .seconds(2))
        #expect(t.records.count == 2)
    }
}
