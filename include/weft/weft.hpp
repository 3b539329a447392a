// weft/weft.hpp - everything weft offers, in one include.
#pragma once

#include "weft/callbacks.hpp"
#include "weft/client.hpp"
#include "weft/compute.hpp"
#include "weft/config.hpp"
#include "weft/delayed.hpp"
#include "weft/diagnostics.hpp"
#include "weft/error.hpp"
#include "weft/graph.hpp"
#include "weft/future.hpp"
#include "weft/key.hpp"
#include "weft/main.hpp"
#include "weft/scheduler.hpp"
#include "weft/task.hpp"
#include "weft/tokenize.hpp"
#include "weft/value.hpp"
#include "weft/version.hpp"
