# Included after every project() of the llama.cpp build (CMAKE_PROJECT_INCLUDE,
# set in .cargo/config.toml): build ggml without its AMX kernels.
#
# With GGML_NATIVE (target-cpu=native) on a CPU that has AMX (Xeon Sapphire
# Rapids and later), ggml compiles its AMX matrix kernels and puts most
# weights in an extra AMX buffer. In the llama.cpp that llama-cpp-sys-2
# 0.1.161 vendors, those kernels crash optimised builds (SIGSEGV in
# ggml_backend_amx_mul_mat, on the first prompt of a Q4_K model; llama.cpp's
# own llama-bench crashes the same way), and the AMX buffer is a second copy
# of the weights beside the mapped file. Explicit -mno-* flags win over
# -march=native in GCC and Clang whatever their order.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  include(CheckCCompilerFlag)
  check_c_compiler_flag("-mno-amx-int8" VOXD_HAS_NO_AMX)
  if(VOXD_HAS_NO_AMX)
    add_compile_options(-mno-amx-tile -mno-amx-int8 -mno-amx-bf16)
  endif()
endif()
