package io.q4spark.kernels.cuda;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Compiles CUDA C++ to CUBIN for one architecture and NVRTC version, caching the result in memory
 * (for the life of this compiler, which its {@link CudaDevice} keeps per process) and on disk under
 * a cache directory, so a Spark executor compiles each kernel once per machine, not once per JVM.
 *
 * <p>Key: SHA-256 over the source, every option in order, the architecture and the NVRTC version,
 * each length-prefixed ({@link #cacheKey}); the program name is left out, since it changes only the
 * log's file names. A file {@code <cacheDir>/<key>.cubin} holds:
 *
 * <pre>
 *   offset 0   8 bytes   magic "Q4CUBIN1"
 *   offset 8  32 bytes   SHA-256 of the CUBIN
 *   offset 40  n bytes   the CUBIN
 * </pre>
 *
 * <p>Files are written to a temporary file in the same directory and moved into place atomically,
 * so a reader never sees half a file, and processes that compile the same kernel at once just
 * replace each other's identical result. A file that cannot be read, is too short, has another
 * magic or fails its checksum is logged, compiled again and replaced: the cache is never fatal, and
 * neither is a cache directory that cannot be written.
 */
public final class NvrtcCompiler {
  private static final Logger LOG = LoggerFactory.getLogger(NvrtcCompiler.class);

  /** First bytes of a cache file; the version digit changes with the file layout. */
  static final byte[] MAGIC = "Q4CUBIN1".getBytes(StandardCharsets.US_ASCII);

  /** SHA-256's output size. */
  static final int DIGEST_BYTES = 32;

  static final int HEADER_BYTES = MAGIC.length + DIGEST_BYTES;

  /** Turns source and options into a CUBIN: NVRTC, or a fake in tests. */
  @FunctionalInterface
  interface Backend {
    byte[] compile(String programName, String source, List<String> options);
  }

  private final Path cacheDir;
  private final String arch;
  private final String nvrtcVersion;
  private final Backend backend;
  private final Map<String, byte[]> memory = new ConcurrentHashMap<>();
  private final AtomicInteger compilations = new AtomicInteger();

  /**
   * @param cacheDir where CUBINs are cached, created when first written; null for memory only
   * @param arch e.g. {@code sm_90}
   * @param nvrtcVersion e.g. {@code 13.0}
   */
  NvrtcCompiler(Path cacheDir, String arch, String nvrtcVersion, Backend backend) {
    this.cacheDir = cacheDir;
    this.arch = arch;
    this.nvrtcVersion = nvrtcVersion;
    this.backend = backend;
  }

  /**
   * The CUBIN for {@code source} compiled with {@code options} (the complete list, architecture
   * included): from memory, else from the disk cache, else compiled and cached. Compile errors are
   * {@link CudaCompileException}s with NVRTC's log, and are not cached.
   */
  public byte[] compile(String programName, String source, List<String> options) {
    String key = cacheKey(source, options, arch, nvrtcVersion);
    byte[] cubin = memory.computeIfAbsent(key, k -> load(k, programName, source, options));
    return cubin.clone();
  }

  /** How many times the backend was called (cache misses), for tests and logs. */
  int compilations() {
    return compilations.get();
  }

  /** The cache file for {@code key}, or null without a cache directory. */
  Path cacheFile(String key) {
    return cacheDir == null ? null : cacheDir.resolve(key + ".cubin");
  }

  private byte[] load(String key, String programName, String source, List<String> options) {
    Path file = cacheFile(key);
    if (file != null && Files.exists(file)) {
      byte[] cached = read(file);
      if (cached != null) {
        LOG.debug("{}: CUBIN from {}", programName, file);
        return cached;
      }
    }
    long start = System.nanoTime();
    compilations.incrementAndGet();
    byte[] cubin = backend.compile(programName, source, options);
    LOG.info(
        "{}: compiled for {} with NVRTC {} in {} ms ({} bytes)",
        programName,
        arch,
        nvrtcVersion,
        (System.nanoTime() - start) / 1_000_000,
        cubin.length);
    if (file != null) {
      write(file, cubin);
    }
    return cubin;
  }

  /** The CUBIN in {@code file}, or null (logged) when the file is unreadable or corrupt. */
  static byte[] read(Path file) {
    byte[] bytes;
    try {
      bytes = Files.readAllBytes(file);
    } catch (IOException e) {
      LOG.warn("CUBIN cache file {} cannot be read ({}); compiling again", file, e.toString());
      return null;
    }
    String problem = null;
    if (bytes.length <= HEADER_BYTES) {
      problem =
          "has " + bytes.length + " bytes, expected more than the " + HEADER_BYTES + "-byte header";
    } else if (!Arrays.equals(bytes, 0, MAGIC.length, MAGIC, 0, MAGIC.length)) {
      problem = "does not start with " + new String(MAGIC, StandardCharsets.US_ASCII);
    } else {
      byte[] expected = Arrays.copyOfRange(bytes, MAGIC.length, HEADER_BYTES);
      byte[] cubin = Arrays.copyOfRange(bytes, HEADER_BYTES, bytes.length);
      if (MessageDigest.isEqual(expected, sha256().digest(cubin))) {
        return cubin;
      }
      problem = "fails its SHA-256 checksum";
    }
    LOG.warn("CUBIN cache file {} {}; compiling again", file, problem);
    return null;
  }

  /** Writes {@code cubin} to {@code file} through a temporary file and an atomic move. */
  static void write(Path file, byte[] cubin) {
    Path temp = null;
    try {
      Files.createDirectories(file.getParent());
      temp = Files.createTempFile(file.getParent(), file.getFileName().toString(), ".tmp");
      ByteBuffer content = ByteBuffer.allocate(HEADER_BYTES + cubin.length);
      content.put(MAGIC).put(sha256().digest(cubin)).put(cubin);
      Files.write(temp, content.array());
      try {
        Files.move(temp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      } catch (AtomicMoveNotSupportedException e) {
        Files.move(temp, file, StandardCopyOption.REPLACE_EXISTING);
      }
      temp = null;
    } catch (IOException e) {
      LOG.warn(
          "CUBIN cache file {} cannot be written ({}); continuing without it", file, e.toString());
    } finally {
      if (temp != null) {
        try {
          Files.deleteIfExists(temp);
        } catch (IOException e) {
          LOG.debug("temporary file {} left behind: {}", temp, e.toString());
        }
      }
    }
  }

  /**
   * SHA-256 (hex) over a format tag, {@code source}, the count and each of {@code options}, {@code
   * arch} and {@code nvrtcVersion}, each string length-prefixed so no two lists collide.
   */
  static String cacheKey(String source, List<String> options, String arch, String nvrtcVersion) {
    MessageDigest digest = sha256();
    update(digest, new String(MAGIC, StandardCharsets.US_ASCII));
    update(digest, source);
    update(digest, Integer.toString(options.size()));
    for (String option : options) {
      update(digest, option);
    }
    update(digest, arch);
    update(digest, nvrtcVersion);
    return HexFormat.of().formatHex(digest.digest());
  }

  private static void update(MessageDigest digest, String value) {
    byte[] bytes = value.getBytes(StandardCharsets.UTF_8);
    digest.update(ByteBuffer.allocate(Integer.BYTES).putInt(bytes.length).array());
    digest.update(bytes);
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every Java platform has SHA-256", e);
    }
  }
}
