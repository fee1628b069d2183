package io.q4spark.kernels.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The CUBIN cache, with a fake compiler in place of NVRTC. */
class NvrtcCompilerTest {
  private static final String SOURCE = "extern \"C\" __global__ void k(float* x) { x[0] = 1; }";
  private static final List<String> OPTIONS = List.of("--gpu-architecture=sm_90", "-std=c++17");

  @TempDir Path dir;

  /** "Compiles" to the source's bytes followed by the options, counting calls. */
  private static final class FakeBackend implements NvrtcCompiler.Backend {
    final AtomicInteger calls = new AtomicInteger();

    @Override
    public byte[] compile(String programName, String source, List<String> options) {
      calls.incrementAndGet();
      return (source + "|" + String.join(" ", options)).getBytes(StandardCharsets.UTF_8);
    }
  }

  private static byte[] expected() {
    return (SOURCE + "|" + String.join(" ", OPTIONS)).getBytes(StandardCharsets.UTF_8);
  }

  @Test
  void keyChangesWithSourceOptionsArchAndVersion() {
    String base = NvrtcCompiler.cacheKey(SOURCE, OPTIONS, "sm_90", "13.0");
    assertEquals(64, base.length(), "hex SHA-256");
    assertEquals(base, NvrtcCompiler.cacheKey(SOURCE, OPTIONS, "sm_90", "13.0"));
    assertNotEquals(base, NvrtcCompiler.cacheKey(SOURCE + " ", OPTIONS, "sm_90", "13.0"));
    assertNotEquals(
        base,
        NvrtcCompiler.cacheKey(
            SOURCE,
            List.of("--gpu-architecture=sm_90", "-std=c++17", "-lineinfo"),
            "sm_90",
            "13.0"));
    assertNotEquals(base, NvrtcCompiler.cacheKey(SOURCE, OPTIONS.reversed(), "sm_90", "13.0"));
    assertNotEquals(base, NvrtcCompiler.cacheKey(SOURCE, OPTIONS, "sm_89", "13.0"));
    assertNotEquals(base, NvrtcCompiler.cacheKey(SOURCE, OPTIONS, "sm_90", "12.8"));
    // length prefixes: moving text between neighbouring fields changes the key
    assertNotEquals(
        NvrtcCompiler.cacheKey("a", List.of("bc"), "sm_90", "13.0"),
        NvrtcCompiler.cacheKey("ab", List.of("c"), "sm_90", "13.0"));
  }

  @Test
  void compilesOnceThenServesFromMemoryAndDisk() {
    FakeBackend backend = new FakeBackend();
    NvrtcCompiler compiler = new NvrtcCompiler(dir, "sm_90", "13.0", backend);
    assertArrayEquals(expected(), compiler.compile("k", SOURCE, OPTIONS));
    assertArrayEquals(expected(), compiler.compile("k", SOURCE, OPTIONS));
    assertEquals(1, backend.calls.get());

    Path file = compiler.cacheFile(NvrtcCompiler.cacheKey(SOURCE, OPTIONS, "sm_90", "13.0"));
    assertTrue(Files.isRegularFile(file), file.toString());

    FakeBackend second = new FakeBackend();
    NvrtcCompiler restarted = new NvrtcCompiler(dir, "sm_90", "13.0", second);
    assertArrayEquals(expected(), restarted.compile("k", SOURCE, OPTIONS));
    assertEquals(0, second.calls.get(), "a new process reads the disk cache");
  }

  @Test
  void leavesNoTemporaryFiles() throws IOException {
    new NvrtcCompiler(dir, "sm_90", "13.0", new FakeBackend()).compile("k", SOURCE, OPTIONS);
    try (Stream<Path> files = Files.list(dir)) {
      List<String> names = files.map(p -> p.getFileName().toString()).toList();
      assertEquals(1, names.size(), names.toString());
      assertTrue(names.getFirst().endsWith(".cubin"), names.toString());
    }
  }

  @Test
  void corruptOrTruncatedCacheFilesAreRecompiledAndReplaced() throws IOException {
    Path file =
        new NvrtcCompiler(dir, "sm_90", "13.0", new FakeBackend())
            .cacheFile(NvrtcCompiler.cacheKey(SOURCE, OPTIONS, "sm_90", "13.0"));
    List<byte[]> corruptions =
        List.of(
            new byte[0],
            "Q4CUBIN1".getBytes(StandardCharsets.US_ASCII),
            "not a cache file at all, but long enough to hold a header"
                .getBytes(StandardCharsets.UTF_8),
            flipLastByte(validFile()));
    for (byte[] content : corruptions) {
      Files.write(file, content);
      FakeBackend backend = new FakeBackend();
      byte[] cubin = new NvrtcCompiler(dir, "sm_90", "13.0", backend).compile("k", SOURCE, OPTIONS);
      assertArrayEquals(expected(), cubin);
      assertEquals(1, backend.calls.get(), "recompiled after " + content.length + " corrupt bytes");
      assertArrayEquals(expected(), NvrtcCompiler.read(file), "the file was replaced");
    }
  }

  private byte[] validFile() throws IOException {
    Path scratch = dir.resolve("scratch").resolve("x.cubin");
    NvrtcCompiler.write(scratch, expected());
    return Files.readAllBytes(scratch);
  }

  private static byte[] flipLastByte(byte[] bytes) {
    bytes[bytes.length - 1] ^= 1;
    return bytes;
  }

  @Test
  void unreadableCacheFileIsRecompiled() throws IOException {
    NvrtcCompiler compiler = new NvrtcCompiler(dir, "sm_90", "13.0", new FakeBackend());
    Path file = compiler.cacheFile(NvrtcCompiler.cacheKey(SOURCE, OPTIONS, "sm_90", "13.0"));
    Files.createDirectories(file); // a directory where the file should be: reading fails
    FakeBackend backend = new FakeBackend();
    byte[] cubin = new NvrtcCompiler(dir, "sm_90", "13.0", backend).compile("k", SOURCE, OPTIONS);
    assertArrayEquals(expected(), cubin);
    assertEquals(1, backend.calls.get());
  }

  @Test
  void unwritableCacheDirectoryIsNotFatal() throws IOException {
    Path notADirectory = dir.resolve("file");
    Files.writeString(notADirectory, "x");
    FakeBackend backend = new FakeBackend();
    NvrtcCompiler compiler =
        new NvrtcCompiler(notADirectory.resolve("cache"), "sm_90", "13.0", backend);
    assertArrayEquals(expected(), compiler.compile("k", SOURCE, OPTIONS));
    assertArrayEquals(expected(), compiler.compile("k", SOURCE, OPTIONS));
    assertEquals(1, backend.calls.get(), "still cached in memory");
  }

  @Test
  void compileErrorsPropagateAndAreNotCached() {
    AtomicInteger calls = new AtomicInteger();
    NvrtcCompiler compiler =
        new NvrtcCompiler(
            dir,
            "sm_90",
            "13.0",
            (name, source, options) -> {
              calls.incrementAndGet();
              throw new CudaCompileException(
                  name, options, 6, "NVRTC_ERROR_COMPILATION", "k.cu(1): error: expected a \";\"");
            });
    CudaCompileException e =
        assertThrows(CudaCompileException.class, () -> compiler.compile("k", SOURCE, OPTIONS));
    assertEquals(OPTIONS, e.options());
    assertEquals("k.cu(1): error: expected a \";\"", e.log());
    assertTrue(e.getMessage().contains("NVRTC_ERROR_COMPILATION (6)"), e.getMessage());
    assertTrue(e.getMessage().contains("expected a \";\""), e.getMessage());
    assertThrows(CudaCompileException.class, () -> compiler.compile("k", SOURCE, OPTIONS));
    assertEquals(2, calls.get());
  }

  @Test
  void returnedArraysAreCopies() {
    NvrtcCompiler compiler = new NvrtcCompiler(null, "sm_90", "13.0", new FakeBackend());
    compiler.compile("k", SOURCE, OPTIONS)[0] = 0;
    assertArrayEquals(expected(), compiler.compile("k", SOURCE, OPTIONS));
  }
}
