import NIOCore

/// One value per event loop of a group, created up front and only ever touched on its own loop: the way
/// Gatehouse keeps pools and caches lock-free on the hot path.
final class PerLoop<Value>: Sendable {
    private let boxes: [ObjectIdentifier: NIOLoopBoundBox<Value>]

    init(group: EventLoopGroup, make: (EventLoop) -> sending Value) {
        var boxes: [ObjectIdentifier: NIOLoopBoundBox<Value>] = [:]
        for loop in group.makeIterator() {
            boxes[ObjectIdentifier(loop)] = NIOLoopBoundBox.makeBoxSendingValue(make(loop), eventLoop: loop)
        }
        self.boxes = boxes
    }

    /// The value of `loop`. Must be called on `loop`; nil for a loop outside the group.
    func value(for loop: EventLoop) -> Value? {
        boxes[ObjectIdentifier(loop)]?.value
    }

    /// Runs `body` on every loop with that loop's value, and waits for all of them.
    func forEach(_ body: @escaping @Sendable (Value) -> Void) async {
        for (_, box) in boxes {
            try? await box.eventLoop.submit { body(box.value) }.get()
        }
    }
}
