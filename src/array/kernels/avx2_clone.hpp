// src/array/kernels/avx2_clone.hpp - WEFT_AVX2_CLONE: a vector loop built
// twice, for AVX2 and for the baseline, the CPU's one chosen when the library
// loads (target_clones, an ifunc). weft is built for any x86-64, whose
// baseline vectors are 2 doubles wide; the hottest loops of fused array
// expressions (binary operators, folds into kept positions) read 4 at once
// where the CPU can (array-expr: 10% fewer instructions, docs/benchmarks.md).
#pragma once

// Not under ThreadSanitizer: the ifunc resolvers run while the dynamic
// loader relocates the library, before TSan's runtime is up, and the
// instrumented resolver crashed every program at load.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(__SANITIZE_THREAD__)
#define WEFT_AVX2_CLONE __attribute__((target_clones("avx2", "default")))
#else
#define WEFT_AVX2_CLONE
#endif
