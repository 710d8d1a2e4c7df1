import Foundation

/// An SVG line chart of the training (and evaluation) loss in a `metrics.jsonl`.
public enum LossCurve {
    public static func svg(metrics url: URL, title: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw TrainingError.unreadableFile(path: url.path, reason: "no such file")
        }
        var train: [(Double, Double)] = [], eval: [(Double, Double)] = []
        for line in data.split(separator: 0x0A) {
            guard let record = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
                let step = (record["step"] as? NSNumber)?.doubleValue else { continue }
            if let loss = (record["loss"] as? NSNumber)?.doubleValue { train.append((step, loss)) }
            if let loss = (record["eval_loss"] as? NSNumber)?.doubleValue { eval.append((step, loss)) }
        }
        let all = train + eval
        guard !all.isEmpty else { return "" }
        let (width, height, margin) = (640.0, 360.0, 48.0)
        let maxStep = max(all.map(\.0).max()!, 1)
        let low = all.map(\.1).min()!, high = all.map(\.1).max()!
        let span = max(high - low, 1e-6)
        func x(_ step: Double) -> Double { margin + (width - 2 * margin) * step / maxStep }
        func y(_ loss: Double) -> Double { height - margin - (height - 2 * margin) * (loss - low) / span }
        func path(_ points: [(Double, Double)]) -> String {
            points.map { String(format: "%.1f,%.1f", x($0.0), y($0.1)) }.joined(separator: " ")
        }
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(Int(margin))" y="24" font-size="14">\(title)</text>
            <line x1="\(margin)" y1="\(height - margin)" x2="\(width - margin)" y2="\(height - margin)" stroke="black"/>
            <line x1="\(margin)" y1="\(margin)" x2="\(margin)" y2="\(height - margin)" stroke="black"/>
            <text x="\(width / 2)" y="\(height - 12)" text-anchor="middle">step</text>
            <text x="8" y="\(margin - 8)">loss</text>
            <text x="\(margin - 4)" y="\(y(high) + 4)" text-anchor="end">\(String(format: "%.2f", high))</text>
            <text x="\(margin - 4)" y="\(y(low) + 4)" text-anchor="end">\(String(format: "%.2f", low))</text>
            <text x="\(width - margin)" y="\(height - margin + 16)" text-anchor="end">\(Int(maxStep))</text>
            <polyline fill="none" stroke="#1f77b4" stroke-width="2" points="\(path(train))"/>

            """
        if !eval.isEmpty {
            svg += "<polyline fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\" stroke-dasharray=\"6 4\" points=\"\(path(eval))\"/>\n"
            for point in eval {
                svg += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#d62728\"/>\n", x(point.0), y(point.1))
            }
        }
        svg += """
            <text x="\(width - margin - 130)" y="\(margin)" fill="#1f77b4">— train loss</text>
            <text x="\(width - margin - 130)" y="\(margin + 16)" fill="#d62728">- - eval loss</text>
            </svg>

            """
        return svg
    }
}
