package io.q4spark.kernels.cuda;

import java.util.List;

/**
 * NVRTC rejected a program ({@code NVRTC_ERROR_COMPILATION}): carries the program's name, the
 * options it was compiled with and NVRTC's full log, which the message repeats.
 */
public final class CudaCompileException extends CudaException {
  private static final long serialVersionUID = 1L;

  private final String programName;
  private final List<String> options;
  private final String log;

  CudaCompileException(
      String programName, List<String> options, int status, String statusName, String log) {
    super(
        "nvrtcCompileProgram("
            + programName
            + ", options="
            + options
            + ") failed: "
            + statusName
            + " ("
            + status
            + "); NVRTC log:\n"
            + log,
        status,
        statusName,
        null);
    this.programName = programName;
    this.options = List.copyOf(options);
    this.log = log;
  }

  /** The name the program was compiled under (NVRTC uses it in the log's file names). */
  public String programName() {
    return programName;
  }

  /** Every option passed to {@code nvrtcCompileProgram}, in order. */
  public List<String> options() {
    return options;
  }

  /** NVRTC's full compilation log. */
  public String log() {
    return log;
  }
}
