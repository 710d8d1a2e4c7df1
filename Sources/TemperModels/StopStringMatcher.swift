/// Incremental stop strings over streamed text. Fed the deltas a streaming detokenizer yields, it
/// returns the text that is safe to emit now and holds back only the longest suffix that could still
/// begin a stop string; when a stop string completes, even across several deltas, it reports the stop
/// and the text before it, and ignores anything fed afterwards.
///
/// Matching runs an Aho–Corasick automaton over Unicode scalars (a delta never splits a scalar, while
/// it may split a grapheme cluster), so the work is O(total length + number of deltas × longest stop):
/// nothing already emitted is scanned again. When several stop strings complete, the one ending first
/// wins; among those ending at the same scalar, the longest (it starts first).
public struct StopStringMatcher: Sendable {
    /// What one delta (or `finish`) produced.
    public struct Output: Sendable, Equatable {
        /// Text to emit now; when `stop` is set, the rest of the text before the stop string.
        public var text: String
        /// The stop string that completed, if one did; the stream is over then.
        public var stop: String?

        public init(text: String, stop: String? = nil) {
            self.text = text
            self.stop = stop
        }
    }

    /// The stop strings, empty ones dropped.
    public let stops: [String]
    private var transitions: [[Unicode.Scalar: Int]] = [[:]]
    private var failure: [Int] = [0]
    private var depth: [Int] = [0]
    /// The index in `stops` of the longest stop string ending at each node (its own or via failure), or -1.
    private var match: [Int] = [-1]
    private var state = 0
    /// The scalars not yet emitted: the `depth[state]` last ones of the text.
    private var held: [Unicode.Scalar] = []
    /// The stop string that ended the stream, if any.
    public private(set) var stopped: String?

    public init(stops: [String]) {
        self.stops = stops.filter { !$0.isEmpty }
        for (index, stop) in self.stops.enumerated() {
            var node = 0
            for scalar in stop.unicodeScalars {
                if let next = transitions[node][scalar] {
                    node = next
                } else {
                    transitions.append([:])
                    failure.append(0)
                    depth.append(depth[node] + 1)
                    match.append(-1)
                    transitions[node][scalar] = transitions.count - 1
                    node = transitions.count - 1
                }
            }
            if match[node] < 0 { match[node] = index }
        }
        // Failure links breadth-first; a node inherits the longest match of its failure node.
        var queue = Array(transitions[0].values)
        var head = 0
        while head < queue.count {
            let node = queue[head]
            head += 1
            for (scalar, child) in transitions[node] {
                var fallback = failure[node]
                while fallback != 0 && transitions[fallback][scalar] == nil { fallback = failure[fallback] }
                let target = transitions[fallback][scalar] ?? 0
                failure[child] = target == child ? 0 : target
                if match[child] < 0 { match[child] = match[failure[child]] }
                queue.append(child)
            }
        }
    }

    /// The text held back, which could still begin a stop string.
    public var heldBack: String { Self.string(held[...]) }

    /// Feeds one delta of text.
    public mutating func feed(_ delta: String) -> Output {
        guard stopped == nil else { return Output(text: "") }
        var pending = held
        pending.append(contentsOf: delta.unicodeScalars)
        var position = held.count
        while position < pending.count {
            let scalar = pending[position]
            while state != 0 && transitions[state][scalar] == nil { state = failure[state] }
            state = transitions[state][scalar] ?? 0
            if match[state] >= 0 {
                let stop = stops[match[state]]
                let length = stop.unicodeScalars.count
                stopped = stop
                held = []
                state = 0
                return Output(text: Self.string(pending[..<(position + 1 - length)]), stop: stop)
            }
            position += 1
        }
        let keep = depth[state]
        held = Array(pending[(pending.count - keep)...])
        return Output(text: Self.string(pending[..<(pending.count - keep)]))
    }

    /// The end of the stream without a stop: releases what was held back.
    public mutating func finish() -> Output {
        guard stopped == nil else { return Output(text: "") }
        let text = Self.string(held[...])
        held = []
        state = 0
        return Output(text: text)
    }

    private static func string(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }
}
