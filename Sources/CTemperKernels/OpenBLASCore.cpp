// OpenBLAS picks its kernels by CPU model when it loads. Debian's 0.3.21 does not know recent Xeons
// (Sapphire Rapids and later) and falls back to its Prescott (SSE3) kernels, which run sgemm about
// 5x slower than its AVX-512 ones on the same core (43 vs 220 GFLOPS on two vCPUs). When it has
// fallen back and the user has not chosen a core (OPENBLAS_CORETYPE), this picks the newest kernel
// set the CPU and the OS support, before any product runs, through OpenBLAS's own dynamic-arch
// entry points: the same path OPENBLAS_CORETYPE takes at load.
#include <dlfcn.h>
#include <strings.h>

#include <cstdlib>
#include <string>

#include "Common.h"
#include "TemperKernels.h"

namespace temper::kernels {

namespace {

using CoreName = char* (*)();
using DynamicHook = void (*)();

CoreName core_name_function() { return reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename")); }

/// OpenBLAS's name for the best kernel set this CPU runs, or nullptr when it is not an x86-64 with AVX2.
const char* best_supported_core() {
#if defined(__x86_64__)
  if (cpu_runs_avx512()) return "SkylakeX";
  if (cpu_runs_avx2_fma()) return "Haswell";
#endif
  return nullptr;
}

const char* chosen_by_us = nullptr;  // constant-initialized, so set safely from a constructor

__attribute__((constructor)) void upgrade_fallback_openblas_core() {
  if (std::getenv("OPENBLAS_CORETYPE")) return;  // the user's choice stands
  auto core_name = core_name_function();
  auto quit = reinterpret_cast<DynamicHook>(dlsym(RTLD_DEFAULT, "gotoblas_dynamic_quit"));
  auto init = reinterpret_cast<DynamicHook>(dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init"));
  if (!core_name || !quit || !init) return;  // not a dynamic-arch OpenBLAS
  const char* current = core_name();
  const char* best = best_supported_core();
  if (!current || !best || strcasecmp(current, "Prescott") != 0) return;
  setenv("OPENBLAS_CORETYPE", best, 1);
  quit();
  init();
  unsetenv("OPENBLAS_CORETYPE");  // child processes detect for themselves
  chosen_by_us = best;
}

}  // namespace

std::string openblas_core() {
  auto core_name = core_name_function();
  if (!core_name) return "not OpenBLAS with dynamic kernels";
  std::string name = core_name();
  return chosen_by_us == nullptr ? name : name + " (chosen by Temper; OpenBLAS detected Prescott)";
}

}  // namespace temper::kernels
