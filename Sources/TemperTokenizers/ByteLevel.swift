// GPT-2's byte-to-character table: every byte gets a printable character so that a byte sequence
// becomes a string BPE can work on (`bytes_to_unicode` in GPT-2's encoder.py and HF tokenizers).

enum ByteLevel {
    /// `characters[b]` is the scalar standing for byte `b`.
    static let characters: [Unicode.Scalar] = {
        var printable: [Int] = Array(33...126) + Array(161...172) + Array(174...255)
        var mapped = printable
        var next = 0
        for byte in 0..<256 where !printable.contains(byte) {
            printable.append(byte)
            mapped.append(256 + next)
            next += 1
        }
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        for (byte, scalar) in zip(printable, mapped) { table[byte] = Unicode.Scalar(UInt32(scalar))! }
        return table
    }()

    /// Inverse of `characters`, indexed by scalar value (all below 324).
    static let bytes: [Int16] = {
        var table = [Int16](repeating: -1, count: 324)
        for (byte, scalar) in characters.enumerated() { table[Int(scalar.value)] = Int16(byte) }
        return table
    }()

    /// The byte a scalar stands for, or nil when it is outside the alphabet.
    @inline(__always)
    static func byte(for scalar: Unicode.Scalar) -> UInt8? {
        let v = Int(scalar.value)
        guard v < bytes.count, bytes[v] >= 0 else { return nil }
        return UInt8(bytes[v])
    }

    /// The byte-level spelling of a string's UTF-8 bytes.
    static func encode<S: Sequence>(_ utf8: S) -> String where S.Element == UInt8 {
        var result = String.UnicodeScalarView()
        for byte in utf8 { result.append(characters[Int(byte)]) }
        return String(result)
    }

    /// Whether every scalar of `token` is in the byte alphabet.
    static func isSpelled(_ token: String) -> Bool {
        token.unicodeScalars.allSatisfy { byte(for: $0) != nil }
    }
}
