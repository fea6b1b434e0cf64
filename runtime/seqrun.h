/* seqrun.h: the C API of seqrun — load a model, make sessions, run them on tensors.
 *
 * The header is plain C (C89 style: block comments, no inline functions; it needs <stddef.h> and
 * <stdint.h>) and can be included from C++. Link with the installed library: `find_package(seqrun)` and
 * target `seqrun::seqrun`, or `pkg-config --cflags --libs seqrun`.
 *
 * Handles. All objects are opaque handles made and freed through this API:
 *   seqrun_model_t    a loaded, verified, optimized model (weights mapped read-only from the file);
 *   seqrun_session_t  runs one model: its cached plans and working memory;
 *   seqrun_tensor_t   a dtype, a shape and the bytes (owned, or a view of caller memory).
 * Every *_free function accepts NULL.
 *
 * Errors. Every function that can fail returns a seqrun_status; SEQRUN_OK (0) means success. On failure,
 * a handle out-parameter is set to NULL and a message naming the thing at fault (file, input, tensor)
 * is stored for the calling thread: seqrun_last_error() returns it. The message stays valid until the next
 * failing call on the same thread; successful calls leave it alone. No C++ exception ever crosses this
 * API: an unexpected one becomes SEQRUN_ERROR_INTERNAL (or SEQRUN_ERROR_OUT_OF_MEMORY) with a message.
 * Simple accessors (seqrun_tensor_rank, seqrun_model_num_inputs, ...) cannot fail: given NULL they return
 * 0 or NULL.
 *
 * Threads. A seqrun_model_t never changes after loading: any number of threads may use it at once, and
 * any number of sessions may share it (they keep it alive: the model handle may be freed first). Give each
 * thread its own seqrun_session_t: sessions on different threads never wait for each other, while calls
 * on one session from several threads are safe but run one at a time. A seqrun_tensor_t is not
 * synchronized: do not write it on one thread while another reads it.
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

typedef struct seqrun_session_options {
  int threads;              /* threads the kernels may use; 0 (default) = all cores */
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

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SEQRUN_SEQRUN_H_ */
