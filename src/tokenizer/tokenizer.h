/*
 * Internal tokenizer interfaces used by the model loader and the converter.
 * The public functions (kvp_tokenize, ...) are declared in kvprune.h.
 */
#ifndef KVP_TOKENIZER_TOKENIZER_H
#define KVP_TOKENIZER_TOKENIZER_H

#include "format/gguf.h"
#include "kvprune.h"

/* Builds the tokenizer from a GGUF file's tokenizer.ggml.* metadata.
 * Sets *out to NULL (and returns KVP_OK) when the file has no tokenizer. */
kvp_status kvt_tokenizer_from_gguf(const gguf_file *g, kvp_tokenizer **out, kvp_error *err);

/* Builds the tokenizer from a Hugging Face folder (tokenizer.json and, when
 * present, tokenizer_config.json). Sets *out to NULL (KVP_OK) when the
 * folder has no tokenizer.json. */
kvp_status kvt_tokenizer_from_hf_dir(const char *dir, kvp_tokenizer **out, kvp_error *err);

/* Writes the tokenizer as tokenizer.ggml.* metadata (llama.cpp's keys:
 * model, pre, tokens, scores, token_type, merges, bos/eos/unk/pad ids,
 * add_bos/add_eos, chat_template) so that llama.cpp and
 * kvt_tokenizer_from_gguf load the same tokenizer. */
kvp_status kvt_tokenizer_to_gguf(const kvp_tokenizer *tok, gguf_writer *w, kvp_error *err);

#endif
