// weft/array.hpp - weft::array, chunked n-dimensional arrays (dask.array), in one include.
//
//   namespace wa = weft::array;
//   auto x = wa::random::random({20000, 20000}, {2000, 2000});
//   auto y = (x + x.T() - x.mean(0)).sum();
//   double total = y.compute().item<double>();
#pragma once

#include "weft/array/array.hpp"
#include "weft/array/blockwise.hpp"
#include "weft/array/chunks.hpp"
#include "weft/array/creation.hpp"
#include "weft/array/dtype.hpp"
#include "weft/array/elementwise.hpp"
#include "weft/array/indexing.hpp"
#include "weft/array/linalg.hpp"
#include "weft/array/ndarray.hpp"
#include "weft/array/random.hpp"
#include "weft/array/rechunk.hpp"
#include "weft/array/reductions.hpp"
#include "weft/array/shape.hpp"
