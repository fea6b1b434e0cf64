/* embed_c: the C API in one page — load a .seqrun model, run it on numbers from the command line, print
 * every output.
 *
 *   embed_c MODEL.seqrun VALUE...
 *
 * The model must take one f32 input. Its symbolic dims (batch, seq, ...) are set to 1 and the VALUEs fill
 * it in row-major order, so give as many as it then has elements. Prints one line per output:
 *   y: f32[1, 3] = 3.375 2.5 4.375
 * Errors print "embed_c: error: <seqrun's message>" on stderr and exit with 1. */
#include <stdio.h>
#include <stdlib.h>

#include "runtime/seqrun.h"

static int report(seqrun_status status) {
  fprintf(stderr, "embed_c: error: %s (%s)\n", seqrun_last_error(), seqrun_status_name(status));
  return 1;
}

static void print_tensor(const char* name, const seqrun_tensor_t* tensor) {
  const int64_t* shape = seqrun_tensor_shape(tensor);
  size_t rank = seqrun_tensor_rank(tensor);
  int64_t count = seqrun_tensor_num_elements(tensor);
  const float* values = (const float*)seqrun_tensor_data(tensor);
  size_t i;
  printf("%s: %s[", name, seqrun_dtype_name(seqrun_tensor_dtype(tensor)));
  for (i = 0; i < rank; ++i) printf("%s%ld", i > 0 ? ", " : "", (long)shape[i]);
  printf("] =");
  if (seqrun_tensor_dtype(tensor) == SEQRUN_DTYPE_F32) {
    for (i = 0; i < (size_t)count; ++i) printf(" %g", values[i]);
  } else {
    printf(" (%ld elements, not f32)", (long)count);
  }
  printf("\n");
}

int main(int argc, char** argv) {
  seqrun_model_t* model = NULL;
  seqrun_session_t* session = NULL;
  seqrun_tensor_t* input = NULL;
  seqrun_tensor_t** outputs = NULL;
  seqrun_value_info info;
  seqrun_status status;
  int64_t shape[16];
  int64_t count = 1;
  float* values = NULL;
  size_t num_outputs = 0, i;
  int exit_code = 1;

  if (argc < 2) {
    fprintf(stderr, "usage: embed_c MODEL.seqrun VALUE...\n");
    return 2;
  }
  printf("seqrun %s\n", seqrun_version());

  /* A model is loaded once; it could be shared by sessions on many threads. */
  status = seqrun_model_load(argv[1], NULL, &model);
  if (status != SEQRUN_OK) return report(status);
  if (seqrun_model_num_inputs(model) != 1) {
    fprintf(stderr, "embed_c: error: the model takes %lu inputs, this example feeds one\n",
            (unsigned long)seqrun_model_num_inputs(model));
    seqrun_model_free(model);
    return 1;
  }
  status = seqrun_model_input_info(model, 0, &info);
  if (status != SEQRUN_OK || info.dtype != SEQRUN_DTYPE_F32 || info.rank < 0 || info.rank > 16) {
    fprintf(stderr, "embed_c: error: the model's input is not an f32 tensor of known rank\n");
    seqrun_model_free(model);
    return 1;
  }
  for (i = 0; i < (size_t)info.rank; ++i) {
    shape[i] = info.shape[i] >= 0 ? info.shape[i] : 1; /* symbolic dims: 1 */
    count *= shape[i];
  }
  if (count != argc - 2) {
    fprintf(stderr, "embed_c: error: input '%s' has %ld elements, %d values given\n", info.name, (long)count,
            argc - 2);
    seqrun_model_free(model);
    return 1;
  }
  values = (float*)malloc(sizeof(float) * (size_t)(count > 0 ? count : 1));
  for (i = 0; i < (size_t)count; ++i) values[i] = (float)atof(argv[2 + i]);

  /* The input tensor copies the values; seqrun_tensor_view would use them in place. */
  status = seqrun_tensor_create(SEQRUN_DTYPE_F32, shape, (size_t)info.rank, values,
                                sizeof(float) * (size_t)count, &input);
  if (status != SEQRUN_OK) goto done;
  status = seqrun_session_create(model, NULL, &session);
  if (status != SEQRUN_OK) goto done;

  /* NULL output slots receive new tensors, which we free. */
  num_outputs = seqrun_model_num_outputs(model);
  outputs = (seqrun_tensor_t**)calloc(num_outputs > 0 ? num_outputs : 1, sizeof(seqrun_tensor_t*));
  status = seqrun_session_run(session, (const seqrun_tensor_t* const*)&input, 1, outputs, num_outputs);
  if (status != SEQRUN_OK) goto done;
  for (i = 0; i < num_outputs; ++i) {
    seqrun_value_info out_info;
    seqrun_model_output_info(model, i, &out_info);
    print_tensor(out_info.name, outputs[i]);
  }
  exit_code = 0;

done:
  if (status != SEQRUN_OK) report(status);
  if (outputs != NULL) {
    for (i = 0; i < num_outputs; ++i) seqrun_tensor_free(outputs[i]);
    free(outputs);
  }
  seqrun_tensor_free(input);
  seqrun_session_free(session);
  seqrun_model_free(model);
  free(values);
  return exit_code;
}
