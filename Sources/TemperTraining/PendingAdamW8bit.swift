// Temporary until TemperNN's AdamW8bit lands (being written beside this).
import TemperNN
typealias AdamW8bit = AdamW
