// Data pipeline for supervised fine-tuning: readers, validation, chat templating with loss masks,
// truncation, packing, shuffling and batching.
