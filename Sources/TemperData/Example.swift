import Foundation

/// The record layouts a dataset file can have.
public enum DatasetFormat: String, Codable, Sendable, CaseIterable {
    /// Alpaca style: `instruction`, optional `input`, `output`, optional `system`.
    case instruction
    /// `messages` (or ShareGPT `conversations`): system/user/assistant turns.
    case chat
    /// `text`: continued pre-training, every token trained.
    case text
}

/// One chat turn with a canonical role (`system`, `user` or `assistant`).
public struct ChatMessage: Codable, Sendable, Hashable {
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// A validated record, before tokenization.
public struct Example: Sendable, Hashable {
    public enum Content: Sendable, Hashable {
        case instruction(system: String?, instruction: String, input: String?, output: String)
        case chat([ChatMessage])
        case text(String)
    }

    public var content: Content
    public var source: SourceLocation

    public init(_ content: Content, source: SourceLocation) {
        self.content = content
        self.source = source
    }

    public var format: DatasetFormat {
        switch content {
        case .instruction: .instruction
        case .chat: .chat
        case .text: .text
        }
    }

    /// The instruction record as a conversation: system? + user(instruction, blank line, input) +
    /// assistant(output), the layout LLaMA-Factory's alpaca converter uses.
    public static func messages(
        system: String?, instruction: String, input: String?, output: String
    ) -> [ChatMessage] {
        var messages: [ChatMessage] = []
        if let system, !system.isEmpty { messages.append(ChatMessage(role: "system", content: system)) }
        var user = instruction
        if let input, !input.isEmpty { user += "\n\n" + input }
        messages.append(ChatMessage(role: "user", content: user))
        messages.append(ChatMessage(role: "assistant", content: output))
        return messages
    }
}

extension Example {
    /// Checks that a conversation can be trained: an optional system message first, then user and
    /// assistant turns alternating, starting with the user and ending with the assistant, no empty
    /// user or assistant turn. Returns the first problem, or nil.
    public static func validateConversation(_ messages: [ChatMessage]) -> DataIssue.Reason? {
        let start = messages.first?.role == "system" ? 1 : 0
        for (index, message) in messages.enumerated() {
            switch message.role {
            case "system":
                if index != 0 {
                    return .roleOrder("messages[\(index)] is 'system'; only messages[0] may be 'system'")
                }
                continue
            case "user", "assistant":
                break
            default:
                return .unknownRole(role: message.role, index: index)
            }
            if index == start, message.role != "user" {
                return .roleOrder(
                    "messages[\(index)] is '\(message.role)'; a conversation starts with 'user' (after an optional 'system')")
            }
            if index > start, message.role == messages[index - 1].role {
                return .roleOrder("messages[\(index)] is a second '\(message.role)' in a row")
            }
        }
        if !messages.contains(where: { $0.role == "assistant" }) { return .noAssistantTurn }
        if messages.last?.role == "user" { return .endsWithUserTurn }
        for (index, message) in messages.enumerated() where message.role != "system" {
            if message.content.allSatisfy(\.isWhitespace) {
                return .emptyField("\(message.role) message messages[\(index)].content")
            }
        }
        return nil
    }
}
