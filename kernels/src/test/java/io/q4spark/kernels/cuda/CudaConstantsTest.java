package io.q4spark.kernels.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/**
 * Pins the enum values bound by hand to those of CUDA 13's {@code cuda.h}, {@code library_types.h}
 * and {@code cublas_api.h} (unchanged since CUDA 11/12): a wrong value here would pass every type
 * check and fail on the GPU.
 */
class CudaConstantsTest {
  @Test
  void cublasValuesMatchTheHeaders() {
    assertEquals(0, Cublas.CUDA_R_32F);
    assertEquals(2, Cublas.CUDA_R_16F);
    assertEquals(14, Cublas.CUDA_R_16BF);
    assertEquals(68, Cublas.CUBLAS_COMPUTE_32F);
    assertEquals(-1, Cublas.CUBLAS_GEMM_DEFAULT);
    assertEquals(0, Cublas.CUBLAS_OP_N);
    assertEquals(1, Cublas.CUBLAS_OP_T);
    assertEquals(0, Cublas.CUBLAS_DEFAULT_MATH);
    assertEquals(2, Cublas.CUBLAS_PEDANTIC_MATH);
  }

  @Test
  void cublasStatusNames() {
    assertEquals("CUBLAS_STATUS_SUCCESS", Cublas.statusName(0));
    assertEquals("CUBLAS_STATUS_NOT_INITIALIZED", Cublas.statusName(1));
    assertEquals("CUBLAS_STATUS_ALLOC_FAILED", Cublas.statusName(3));
    assertEquals("CUBLAS_STATUS_INVALID_VALUE", Cublas.statusName(7));
    assertEquals("CUBLAS_STATUS_ARCH_MISMATCH", Cublas.statusName(8));
    assertEquals("CUBLAS_STATUS_EXECUTION_FAILED", Cublas.statusName(13));
    assertEquals("CUBLAS_STATUS_NOT_SUPPORTED", Cublas.statusName(15));
    assertEquals("cublasStatus_t 99", Cublas.statusName(99));
  }

  @Test
  void driverValuesMatchTheHeader() {
    assertEquals(0, CudaDriver.CUDA_SUCCESS);
    assertEquals(1, CudaDriver.CUDA_ERROR_INVALID_VALUE);
    assertEquals(2, CudaDriver.CUDA_ERROR_OUT_OF_MEMORY);
    assertEquals(34, CudaDriver.CUDA_ERROR_STUB_LIBRARY);
    assertEquals(35, CudaDriver.CUDA_ERROR_INSUFFICIENT_DRIVER);
    assertEquals(100, CudaDriver.CUDA_ERROR_NO_DEVICE);
    assertEquals(201, CudaDriver.CUDA_ERROR_INVALID_CONTEXT);
    assertEquals(500, CudaDriver.CUDA_ERROR_NOT_FOUND);
    assertEquals(16, CudaDriver.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
    assertEquals(75, CudaDriver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
    assertEquals(76, CudaDriver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
    assertEquals(97, CudaDriver.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN);
    assertEquals(0, CudaDriver.CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK);
    assertEquals(1, CudaDriver.CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES);
    assertEquals(4, CudaDriver.CU_FUNC_ATTRIBUTE_NUM_REGS);
    assertEquals(8, CudaDriver.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES);
    assertEquals(0, CudaDriver.CU_STREAM_DEFAULT);
    assertEquals(0, CudaDriver.CU_EVENT_DEFAULT);
    assertEquals(2, CudaDriver.CU_EVENT_DISABLE_TIMING);
    assertEquals(0, Nvrtc.NVRTC_SUCCESS);
    assertEquals(6, Nvrtc.NVRTC_ERROR_COMPILATION);
  }
}
