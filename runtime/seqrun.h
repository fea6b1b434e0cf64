/* seqrun.h: the C API of seqrun — load a model, make sessions, run them on tensors, decode token by token.
 *
 * The header is plain C (C89 style: block comments, no inline functions; it needs <stddef.h> and
 * <stdint.h>) and can be included from C++. Link with the installed library: `find_package(seqrun)` and
 * target `seqrun::seqrun`, or `pkg-config --cflags --libs seqrun`; then `#include "runtime/seqrun.h"`.
 * tools/examples/embed_c.c is a complete program.
 *
 * Handles. All objects are opaque handles made and freed through this API:
 *   seqrun_model_t     a loaded, verified, optimized model (weights mapped read-only from the file);
 *   seqrun_session_t   runs one model: its cached plans and working memory;
 *   seqrun_tensor_t    a dtype, a shape and the bytes (owned, or a view of caller memory);
 *   seqrun_decoder_t   feeds tokens to sequences of a model and keeps their recurrent state;
 *   seqrun_snapshot_t  a copy of one sequence's state, to restore later;
 *   seqrun_sampler_t   picks tokens from logits (greedy, or seeded random with temperature, top-k, top-p).
 * Every *_free function accepts NULL. A handle keeps what it needs alive: a session its model, a decoder
 * its session; so they may be freed in any order.
 *
 * Errors. Every function that can fail returns a seqrun_status; SEQRUN_OK (0) means success. On failure,
 * a handle out-parameter is set to NULL and a message naming the thing at fault (file, input, sequence,
 * tensor) is stored for the calling thread: seqrun_last_error() returns it. The message stays valid until
 * the next failing call on the same thread; successful calls leave it alone. No C++ exception ever crosses
 * this API: an unexpected one becomes SEQRUN_ERROR_INTERNAL (or SEQRUN_ERROR_OUT_OF_MEMORY) with a message.
 * Simple accessors (seqrun_tensor_rank, seqrun_model_num_inputs, ...) cannot fail: given NULL they return
 * 0, -1 or NULL as documented.
 *
 * Threads. A seqrun_model_t never changes after loading: any number of threads may use it at once, and
 * any number of sessions may share it (one mapping of the weights). Give each thread its own
 * seqrun_session_t: sessions on different threads never wait for each other, while calls on one session
 * from several threads are safe but run one at a time. Decoders, samplers, snapshots and tensors are not
 * synchronized: one thread at a time uses each (a tensor may be read by several threads at once).
 * Kernels use OpenMP on the calling thread; with many threads each running a session, set OMP_NUM_THREADS
 * (e.g. to 1) so they do not oversubscribe the cores.
 */
#ifndef SEQRUN_SEQRUN_H_
#define SEQRUN_SEQRUN_H_

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define SEQRUN_API __attribute__((visibility("default")))
#else
#define SEQRUN_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status, errors, version ------------------------------------------------------------------- */

typedef enum seqrun_status {
  SEQRUN_OK = 0,
  SEQRUN_ERROR_INVALID_ARGUMENT = 1, /* NULL handle or pointer, bad dtype, shape or size, bad option */
  SEQRUN_ERROR_NOT_FOUND = 2,        /* unknown input or output name, index out of range, no such key */
  SEQRUN_ERROR_LOAD = 3,             /* the model file is missing, unreadable, corrupt or rejected */
  SEQRUN_ERROR_RUN = 4,              /* a run failed (e.g. a kernel error or a NaN with check_finite) */
  SEQRUN_ERROR_OUT_OF_MEMORY = 5,
  SEQRUN_ERROR_INTERNAL = 6 /* an unexpected failure inside seqrun (a bug: please report it) */
} seqrun_status;

/* The message of the calling thread's last failed call ("" when none failed yet). Never NULL. */
SEQRUN_API const char* seqrun_last_error(void);
/* "ok", "invalid argument", "not found", "load error", "run error", "out of memory", "internal error". */
SEQRUN_API const char* seqrun_status_name(seqrun_status status);
/* The library version, e.g. "0.1.0". */
SEQRUN_API const char* seqrun_version(void);

/* ---- element types ----------------------------------------------------------------------------- */

/* The numbers are those of the .seqrun file format (stable, append only). */
typedef enum seqrun_dtype {
  SEQRUN_DTYPE_UNDEFINED = 0,
  SEQRUN_DTYPE_F32 = 1,
  SEQRUN_DTYPE_F16 = 2,  /* IEEE half, stored as uint16_t bits */
  SEQRUN_DTYPE_BF16 = 3, /* bfloat16, stored as uint16_t bits */
  SEQRUN_DTYPE_I64 = 4,
  SEQRUN_DTYPE_I32 = 5,
  SEQRUN_DTYPE_I8 = 6,
  SEQRUN_DTYPE_U8 = 7,
  SEQRUN_DTYPE_BOOL = 8, /* one byte per element, 0 or 1 */
  SEQRUN_DTYPE_F64 = 9,
  SEQRUN_DTYPE_I16 = 10,
  SEQRUN_DTYPE_U16 = 11,
  SEQRUN_DTYPE_U32 = 12,
  SEQRUN_DTYPE_U64 = 13
} seqrun_dtype;

/* Bytes per element; 0 for SEQRUN_DTYPE_UNDEFINED and values outside the enum. */
SEQRUN_API size_t seqrun_dtype_size(seqrun_dtype dtype);
/* "f32", "i64", "bool", ...; "undefined" for SEQRUN_DTYPE_UNDEFINED and values outside the enum. */
SEQRUN_API const char* seqrun_dtype_name(seqrun_dtype dtype);

/* ---- tensors ----------------------------------------------------------------------------------- */

typedef struct seqrun_tensor seqrun_tensor_t;

/* A tensor that owns a copy of `data_bytes` bytes at `data` (dense, row-major). `data_bytes` must equal
 * the element count times seqrun_dtype_size(dtype). `data` may be NULL (with data_bytes 0) for a
 * zero-filled tensor. `shape` has `rank` entries, each >= 0; rank 0 is a scalar (shape may be NULL). */
SEQRUN_API seqrun_status seqrun_tensor_create(seqrun_dtype dtype, const int64_t* shape, size_t rank,
                                              const void* data, size_t data_bytes, seqrun_tensor_t** out);
/* A tensor over the caller's memory, without a copy: the caller keeps `data` alive (and unchanged while a
 * run reads it) until the tensor is freed. A view passed as a run's output receives the results in place
 * when its dtype and shape fit. */
SEQRUN_API seqrun_status seqrun_tensor_view(seqrun_dtype dtype, const int64_t* shape, size_t rank, void* data,
                                            size_t data_bytes, seqrun_tensor_t** out);
SEQRUN_API void seqrun_tensor_free(seqrun_tensor_t* tensor);

SEQRUN_API seqrun_dtype seqrun_tensor_dtype(const seqrun_tensor_t* tensor);
SEQRUN_API size_t seqrun_tensor_rank(const seqrun_tensor_t* tensor);
/* `rank` dims, valid until the tensor is freed or reused as a run output. NULL for a NULL tensor. */
SEQRUN_API const int64_t* seqrun_tensor_shape(const seqrun_tensor_t* tensor);
SEQRUN_API int64_t seqrun_tensor_num_elements(const seqrun_tensor_t* tensor);
SEQRUN_API size_t seqrun_tensor_num_bytes(const seqrun_tensor_t* tensor);
/* The first byte of the elements (NULL for a NULL or empty tensor). */
SEQRUN_API const void* seqrun_tensor_data(const seqrun_tensor_t* tensor);
SEQRUN_API void* seqrun_tensor_mutable_data(seqrun_tensor_t* tensor);

/* ---- models ------------------------------------------------------------------------------------ */

typedef struct seqrun_model seqrun_model_t;

typedef struct seqrun_model_options {
  int opt_level;      /* 0: the graph as stored; 1 (default): the standard pass pipeline */
  const char* passes; /* NULL (default), or a comma-separated pass list that replaces opt_level's */
} seqrun_model_options;

/* Fills in the defaults. */
SEQRUN_API void seqrun_model_options_init(seqrun_model_options* options);

/* Loads a .seqrun file (mapped read-only and verified) and optimizes it. `options` may be NULL. */
SEQRUN_API seqrun_status seqrun_model_load(const char* path, const seqrun_model_options* options,
                                           seqrun_model_t** out);
/* The same from the bytes of a .seqrun file in memory; the bytes are copied. */
SEQRUN_API seqrun_status seqrun_model_load_from_memory(const void* data, size_t size,
                                                       const seqrun_model_options* options,
                                                       seqrun_model_t** out);
/* Sessions made from the model keep it alive after this. */
SEQRUN_API void seqrun_model_free(seqrun_model_t* model);

/* A graph input or output as the model declares it. Every pointer stays valid while the model lives. */
typedef struct seqrun_value_info {
  const char* name;
  seqrun_dtype dtype;
  int rank;                     /* -1 when the rank is unknown */
  const int64_t* shape;         /* `rank` dims; -1 for a symbolic or unknown dim */
  const char* const* dim_names; /* `rank` entries: the symbol ("batch", "seq"), or NULL for other dims */
} seqrun_value_info;

SEQRUN_API size_t seqrun_model_num_inputs(const seqrun_model_t* model);
SEQRUN_API size_t seqrun_model_num_outputs(const seqrun_model_t* model);
SEQRUN_API seqrun_status seqrun_model_input_info(const seqrun_model_t* model, size_t index,
                                                 seqrun_value_info* info);
SEQRUN_API seqrun_status seqrun_model_output_info(const seqrun_model_t* model, size_t index,
                                                  seqrun_value_info* info);
/* The position of the input / output called `name`. */
SEQRUN_API seqrun_status seqrun_model_input_index(const seqrun_model_t* model, const char* name,
                                                  size_t* index);
SEQRUN_API seqrun_status seqrun_model_output_index(const seqrun_model_t* model, const char* name,
                                                   size_t* index);
/* A metadata value stored in the file ("producer", ...); valid while the model lives. */
SEQRUN_API seqrun_status seqrun_model_metadata(const seqrun_model_t* model, const char* key,
                                               const char** value);

/* ---- sessions ---------------------------------------------------------------------------------- */

typedef struct seqrun_session seqrun_session_t;

typedef enum seqrun_executor {
  SEQRUN_EXECUTOR_PLANNED = 0,  /* shape-specialized, memory-planned, fast kernels (default) */
  SEQRUN_EXECUTOR_REFERENCE = 1 /* node by node with the reference kernels (the correctness baseline) */
} seqrun_executor;

/* threads: the kernels' thread budget, 0 (default) = all cores. The OpenMP kernels (and oneDNN) size
 * their teams from the calling thread's OpenMP setting, i.e. OMP_NUM_THREADS. */
typedef struct seqrun_session_options {
  int threads;
  seqrun_executor executor; /* SEQRUN_EXECUTOR_PLANNED by default */
  int check_finite;         /* nonzero: a NaN or Inf in any float result fails the run, naming the node */
} seqrun_session_options;

SEQRUN_API void seqrun_session_options_init(seqrun_session_options* options);

/* A session over `model`; `options` may be NULL. The session keeps the model alive. */
SEQRUN_API seqrun_status seqrun_session_create(const seqrun_model_t* model,
                                               const seqrun_session_options* options, seqrun_session_t** out);
SEQRUN_API void seqrun_session_free(seqrun_session_t* session);

/* Runs the model once. `inputs` holds one tensor per model input, in the model's input order; `outputs`
 * has room for exactly seqrun_model_num_outputs() handles, in the model's output order. Each outputs[i]
 * is either NULL, and then receives a new tensor the caller frees, or a tensor from the caller (e.g. the
 * previous run's), which is reused: written in place when its dtype and shape fit, otherwise given new
 * bytes. So a loop over one input shape allocates nothing after its first run. Input dtypes and shapes
 * are checked against the model (SEQRUN_ERROR_INVALID_ARGUMENT, naming the input). */
SEQRUN_API seqrun_status seqrun_session_run(seqrun_session_t* session, const seqrun_tensor_t* const* inputs,
                                            size_t num_inputs, seqrun_tensor_t** outputs, size_t num_outputs);
/* The same by name: every model input exactly once, in any order; any subset of the outputs, in any
 * order (an unknown or repeated name is an error that lists the model's names). */
SEQRUN_API seqrun_status seqrun_session_run_named(seqrun_session_t* session, const char* const* input_names,
                                                  const seqrun_tensor_t* const* inputs, size_t num_inputs,
                                                  const char* const* output_names, seqrun_tensor_t** outputs,
                                                  size_t num_outputs);

/* ---- decoding: prefill, step, state snapshots ------------------------------------------------------
 *
 * A decoder (runtime::StatefulSession) feeds tokens to any number of independent sequences of one model and
 * keeps each sequence's recurrent state between calls: prefill the prompt, then step one token at a time.
 * The model must follow the state convention of runtime/state.h: one token-id input, a logits output, and
 * carried state as "state.<key>" inputs paired with "new_state.<key>" outputs (or metadata naming them);
 * a model without state also works (each call reruns the whole history).
 * A decoder runs on a session and keeps it (and its model) alive. One thread at a time may use a decoder;
 * for parallel decoding give each thread its own decoder on its own session. */

typedef struct seqrun_decoder seqrun_decoder_t;
typedef struct seqrun_snapshot seqrun_snapshot_t;

typedef struct seqrun_decoder_options {
  int64_t max_context;   /* most tokens one sequence may hold; 0 (default) = no bound */
  int64_t prefill_chunk; /* prompt tokens per graph run; 0 (default) = the whole prompt at once */
} seqrun_decoder_options;

SEQRUN_API void seqrun_decoder_options_init(seqrun_decoder_options* options);

/* A decoder over `session`; `options` may be NULL. Fails (SEQRUN_ERROR_INVALID_ARGUMENT) when the model
 * does not follow the state convention, naming the input or output at fault. */
SEQRUN_API seqrun_status seqrun_decoder_create(seqrun_session_t* session,
                                               const seqrun_decoder_options* options, seqrun_decoder_t** out);
SEQRUN_API void seqrun_decoder_free(seqrun_decoder_t* decoder);

/* The logits' vocabulary size; -1 when the model does not say (or for NULL). */
SEQRUN_API int64_t seqrun_decoder_vocab_size(const seqrun_decoder_t* decoder);
/* Nonzero when the model carries state (steps cost O(1)); 0 when each call reruns the history. */
SEQRUN_API int seqrun_decoder_is_stateful(const seqrun_decoder_t* decoder);

/* A new sequence at the initial state (no tokens). Ids count up from 0 and are never reused. */
SEQRUN_API seqrun_status seqrun_decoder_add_sequence(seqrun_decoder_t* decoder, int* seq_id);
SEQRUN_API seqrun_status seqrun_decoder_remove_sequence(seqrun_decoder_t* decoder, int seq_id);
/* Back to the initial state, no tokens. */
SEQRUN_API seqrun_status seqrun_decoder_reset(seqrun_decoder_t* decoder, int seq_id);
SEQRUN_API seqrun_status seqrun_decoder_token_count(const seqrun_decoder_t* decoder, int seq_id,
                                                    int64_t* count);

/* Feeds `count` tokens (count >= 1) to the sequence. When `logits` is not NULL it receives the logits after
 * the last token, f32[vocab]: *logits NULL gets a new tensor the caller frees; a tensor from the caller is
 * reused (written in place when it is f32[vocab], else given new bytes). A max_context overflow is refused
 * before anything runs and leaves the sequence unchanged; after any other failure, reset or restore it. */
SEQRUN_API seqrun_status seqrun_decoder_prefill(seqrun_decoder_t* decoder, int seq_id, const int32_t* tokens,
                                                size_t count, seqrun_tensor_t** logits);
/* Feeds one token; `logits` as for prefill. */
SEQRUN_API seqrun_status seqrun_decoder_step(seqrun_decoder_t* decoder, int seq_id, int32_t token,
                                             seqrun_tensor_t** logits);

/* A deep copy of the sequence's state (recurrent state, token count, last logits). Restoring it into any
 * sequence of a decoder for the same model continues exactly from there; a snapshot may be restored any
 * number of times. */
SEQRUN_API seqrun_status seqrun_decoder_snapshot(const seqrun_decoder_t* decoder, int seq_id,
                                                 seqrun_snapshot_t** out);
SEQRUN_API seqrun_status seqrun_decoder_restore(seqrun_decoder_t* decoder, int seq_id,
                                                const seqrun_snapshot_t* snapshot);
SEQRUN_API int64_t seqrun_snapshot_token_count(const seqrun_snapshot_t* snapshot);
SEQRUN_API void seqrun_snapshot_free(seqrun_snapshot_t* snapshot);

/* ---- sampling ---------------------------------------------------------------------------------------
 * Picks the next token from logits: greedy (temperature 0) or random with temperature, top-k and top-p,
 * from a seeded generator, so the same seed and logits give the same tokens everywhere (runtime/sampler.h).
 */

typedef struct seqrun_sampler seqrun_sampler_t;

typedef struct seqrun_sampling_options {
  double temperature; /* 0 = greedy (argmax); default 1 */
  int64_t top_k;      /* 0 (default) = no limit */
  double top_p;       /* in (0, 1]; 1 (default) = no limit */
  uint64_t seed;      /* default 0 */
} seqrun_sampling_options;

SEQRUN_API void seqrun_sampling_options_init(seqrun_sampling_options* options);
SEQRUN_API seqrun_status seqrun_sampler_create(const seqrun_sampling_options* options,
                                               seqrun_sampler_t** out);
SEQRUN_API void seqrun_sampler_free(seqrun_sampler_t* sampler);
/* The next token for `logits` (f32, its elements are the vocabulary). NaN or +inf logits are an error. */
SEQRUN_API seqrun_status seqrun_sampler_sample(seqrun_sampler_t* sampler, const seqrun_tensor_t* logits,
                                               int32_t* token);

/* ---- text generation -------------------------------------------------------------------------------
 * Encodes a prompt with the tokenizer stored in the model (seqrun-export --tokenizer), prefills it on a new
 * sequence, then samples and steps until max_tokens, a stop string, the end-of-sequence token or the
 * callback ends it. The callback receives the generated text as it is produced, in pieces of whole UTF-8
 * characters (not NUL-terminated: use `length`); a stop string and what follows it are never passed on. */

/* Return nonzero to continue, 0 to stop generating. */
typedef int (*seqrun_text_callback)(const char* text, size_t length, void* user_data);

typedef struct seqrun_generate_options {
  int64_t max_tokens; /* most tokens to generate, the end-of-sequence token included; default 100 */
  seqrun_sampling_options sampling;
  const char* const* stop; /* `num_stop` non-empty stop strings, or NULL; default none */
  size_t num_stop;
  int stop_at_eos; /* nonzero (default): the tokenizer's end-of-sequence id ends generation */
} seqrun_generate_options;

typedef struct seqrun_generate_stats {
  int64_t prompt_tokens;
  int64_t generated_tokens; /* sampled tokens, including a final end-of-sequence or stop-completing one */
  double setup_seconds;     /* building execution plans before the timed runs (once per shape) */
  double prompt_seconds;
  double generation_seconds;
  char finish_reason[16]; /* "length", "stop", "eos" or "callback" */
} seqrun_generate_stats;

SEQRUN_API void seqrun_generate_options_init(seqrun_generate_options* options);
/* Generates on a new sequence of `decoder` (removed again at the end). `options` and `stats` may be NULL;
 * `callback` may be NULL (the text is then only counted). Fails with SEQRUN_ERROR_NOT_FOUND when the model
 * has no tokenizer. */
SEQRUN_API seqrun_status seqrun_generate(seqrun_decoder_t* decoder, const char* prompt,
                                         const seqrun_generate_options* options,
                                         seqrun_text_callback callback, void* user_data,
                                         seqrun_generate_stats* stats);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SEQRUN_SEQRUN_H_ */
