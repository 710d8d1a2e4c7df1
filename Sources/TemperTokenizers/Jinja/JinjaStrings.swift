// Python `str` methods over Unicode scalars (Python indexes and strips by code point).

enum PyString {
    static func strip(_ s: String, _ chars: String?, leading: Bool, trailing: Bool) -> String {
        let scalars = Array(s.unicodeScalars)
        let set = chars.map { Set($0.unicodeScalars) }
        func strippable(_ scalar: Unicode.Scalar) -> Bool { set?.contains(scalar) ?? isPythonSpace(scalar) }
        var start = 0
        var end = scalars.count
        if leading { while start < end, strippable(scalars[start]) { start += 1 } }
        if trailing { while end > start, strippable(scalars[end - 1]) { end -= 1 } }
        return String(String.UnicodeScalarView(scalars[start..<end]))
    }

    /// `str.split(sep=None, maxsplit=-1)`.
    static func split(_ s: String, _ separator: String?, maxSplit: Int = -1) throws -> [String] {
        let scalars = Array(s.unicodeScalars)
        var parts: [String] = []
        guard let separator else {
            var i = 0
            var splits = 0
            while true {
                while i < scalars.count, isPythonSpace(scalars[i]) { i += 1 }
                if i == scalars.count { break }
                if maxSplit >= 0, splits == maxSplit {
                    var end = scalars.count
                    while end > i, isPythonSpace(scalars[end - 1]) { end -= 1 }
                    parts.append(String(String.UnicodeScalarView(scalars[i..<end])))
                    break
                }
                let start = i
                while i < scalars.count, !isPythonSpace(scalars[i]) { i += 1 }
                parts.append(String(String.UnicodeScalarView(scalars[start..<i])))
                splits += 1
            }
            return parts
        }
        let sep = Array(separator.unicodeScalars)
        if sep.isEmpty { throw JinjaError(.value, "empty separator") }
        var start = 0
        var i = 0
        var splits = 0
        while i + sep.count <= scalars.count, maxSplit < 0 || splits < maxSplit {
            if Array(scalars[i..<(i + sep.count)]) == sep {
                parts.append(String(String.UnicodeScalarView(scalars[start..<i])))
                i += sep.count
                start = i
                splits += 1
            } else {
                i += 1
            }
        }
        parts.append(String(String.UnicodeScalarView(scalars[start...])))
        return parts
    }

    /// `str.rsplit(sep=None, maxsplit=-1)`.
    static func rsplit(_ s: String, _ separator: String?, maxSplit: Int = -1) throws -> [String] {
        if maxSplit < 0 { return try split(s, separator) }
        let reversed = String(String.UnicodeScalarView(s.unicodeScalars.reversed()))
        let reversedSeparator = separator.map { String(String.UnicodeScalarView($0.unicodeScalars.reversed())) }
        return try split(reversed, reversedSeparator, maxSplit: maxSplit).reversed().map {
            String(String.UnicodeScalarView($0.unicodeScalars.reversed()))
        }
    }

    /// `str.splitlines(keepends=False)`.
    static func splitlines(_ s: String, keepEnds: Bool = false) -> [String] {
        let scalars = Array(s.unicodeScalars)
        var lines: [String] = []
        var start = 0
        var i = 0
        while i < scalars.count {
            let value = scalars[i].value
            let isBreak = [0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029].contains(value)
            if isBreak {
                var end = i + 1
                if value == 0x0D, end < scalars.count, scalars[end] == "\n" { end += 1 }
                lines.append(String(String.UnicodeScalarView(scalars[start..<(keepEnds ? end : i)])))
                start = end
                i = end
            } else {
                i += 1
            }
        }
        if start < scalars.count { lines.append(String(String.UnicodeScalarView(scalars[start...]))) }
        return lines
    }

    static func replace(_ s: String, _ old: String, _ new: String, count: Int = -1) -> String {
        let scalars = Array(s.unicodeScalars)
        let oldScalars = Array(old.unicodeScalars)
        var out = String.UnicodeScalarView()
        var replaced = 0
        if oldScalars.isEmpty {
            // Python inserts `new` between every character (and at both ends).
            for scalar in scalars {
                if count < 0 || replaced < count {
                    out.append(contentsOf: new.unicodeScalars)
                    replaced += 1
                }
                out.append(scalar)
            }
            if count < 0 || replaced < count { out.append(contentsOf: new.unicodeScalars) }
            return String(out)
        }
        var i = 0
        while i < scalars.count {
            if (count < 0 || replaced < count), i + oldScalars.count <= scalars.count,
                Array(scalars[i..<(i + oldScalars.count)]) == oldScalars
            {
                out.append(contentsOf: new.unicodeScalars)
                i += oldScalars.count
                replaced += 1
            } else {
                out.append(scalars[i])
                i += 1
            }
        }
        return String(out)
    }

    static func find(_ s: String, _ sub: String, reverse: Bool = false) -> Int {
        let scalars = Array(s.unicodeScalars)
        let needle = Array(sub.unicodeScalars)
        guard needle.count <= scalars.count else { return -1 }
        let positions = Array(0...(scalars.count - needle.count))
        for i in reverse ? positions.reversed() : positions where Array(scalars[i..<(i + needle.count)]) == needle {
            return i
        }
        return -1
    }

    static func count(_ s: String, _ sub: String) -> Int {
        let scalars = Array(s.unicodeScalars)
        let needle = Array(sub.unicodeScalars)
        if needle.isEmpty { return scalars.count + 1 }
        var i = 0
        var found = 0
        while i + needle.count <= scalars.count {
            if Array(scalars[i..<(i + needle.count)]) == needle {
                found += 1
                i += needle.count
            } else {
                i += 1
            }
        }
        return found
    }

    static func isCased(_ scalar: Unicode.Scalar) -> Bool {
        scalar.properties.isLowercase || scalar.properties.isUppercase || scalar.properties.generalCategory == .titlecaseLetter
    }

    static func upper(_ s: String) -> String { s.uppercased() }
    static func lower(_ s: String) -> String { s.lowercased() }

    /// `str.title()`: a cased character after an uncased one starts a word.
    static func title(_ s: String) -> String {
        var out = ""
        var previousCased = false
        for scalar in s.unicodeScalars {
            let text = String(scalar)
            out += previousCased ? text.lowercased() : (scalar.properties.titlecaseMapping)
            previousCased = isCased(scalar)
        }
        return out
    }

    /// `str.capitalize()`: first character title-cased, the rest lowercased.
    static func capitalize(_ s: String) -> String {
        guard let first = s.unicodeScalars.first else { return s }
        return first.properties.titlecaseMapping + String(String.UnicodeScalarView(s.unicodeScalars.dropFirst())).lowercased()
    }
}
