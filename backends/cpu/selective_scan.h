// Private to backends/cpu: what SelectiveScan's two files share. selective_scan.cpp holds the kernel (the
// factory, the transposed B/C tables, the parallel split) and the AVX2 path, which vectorizes over the
// state dimension; selective_scan_avx512.cpp holds the AVX-512F path, which vectorizes over 16 channels.
#pragma once

#include <cstdint>

namespace seqrun::backends::cpu {

constexpr int64_t kScanBlockSteps = 64;     // steps per block: the block buffers stay in L1
constexpr int64_t kScanMaxStateSize = 256;  // larger N declines (the reference runs it)

// atanh(s) / s as a polynomial in w = s², s in [0, 1/3] (softplus's log1p(e) = 2 atanh(e / (2 + e))):
// degree-4 least-squares fit for relative error on Chebyshev nodes (numpy), relative error < 1e-8.
inline constexpr float kScanAtanhPoly[5] = {1.0f, 0.3333316147327423f, 0.20012325048446655f,
                                            0.13982172310352325f, 0.14080727100372314f};

// One run's tensors. Layouts as in ir/ops/ssm.cpp; b_table / c_table are Bmat / Cmat transposed to
// [B·G, L, Npad] (pad lanes zero). Optional inputs and the state output are null when absent.
struct SelectiveScanArgs {
  const float *u, *delta, *a, *skip, *z, *bias, *h0;
  float *y, *h;
  const float *b_table, *c_table;
  int64_t channels, steps, state, padded_state;  // D, L, N, Npad (a multiple of 16 for the AVX-512 path)
  bool softplus;
};

// The AVX-512F path (call only where the CPU has AVX-512F): rows first_row .. first_row + count - 1
// (count <= 16; row = b·D + d), consecutive channels of one (batch, group) whose tables are number `table`.
void selective_scan_channels_avx512(const SelectiveScanArgs& args, int64_t table, int64_t first_row,
                                    int count);

}  // namespace seqrun::backends::cpu
