package io.roundhouse.driver;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.Backends;
import io.roundhouse.worker.checkpoint.CheckpointStore;
import io.roundhouse.worker.model.BackendCheck;
import io.roundhouse.worker.train.Generator;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code roundhouse generate}: samples text from a language model's checkpoint. */
@Command(name = "generate", mixinStandardHelpOptions = true,
        description = "Sample text from a language model checkpoint (model.kind=lm) with a key/value cache; prints the "
                + "prompt and what follows it.")
final class GenerateCommand implements Callable<Integer> {
    @Option(names = "--checkpoint", required = true, paramLabel = "DIR",
            description = "a checkpoint step folder, or a folder of them (the latest complete one is taken)")
    String checkpoint;

    @Option(names = "--prompt", defaultValue = "In the beginning", description = "the text to continue (default: ${DEFAULT-VALUE})")
    String prompt;

    @Option(names = "--tokens", defaultValue = "200", description = "tokens (bytes) to generate (default: ${DEFAULT-VALUE})")
    int tokens;

    @Option(names = "--temperature", defaultValue = "0.8",
            description = "softmax temperature; 0 takes the most likely token (default: ${DEFAULT-VALUE})")
    double temperature;

    @Option(names = "--top-p", defaultValue = "0.95",
            description = "nucleus sampling: the smallest set of tokens whose probability reaches this (default: ${DEFAULT-VALUE})")
    double topP;

    @Option(names = "--seed", defaultValue = "1", description = "the sampler's seed: a seed fixes the text (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--backend", defaultValue = "cpu", description = "cpu, cuda or auto (default: ${DEFAULT-VALUE})")
    String backend;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        if (tokens < 0 || temperature < 0 || !(topP > 0 && topP <= 1)) {
            throw new picocli.CommandLine.ParameterException(spec.commandLine(), "--tokens must be >= 0, --temperature "
                    + ">= 0 and --top-p in (0, 1]");
        }
        Backends.checkAvailable(backend);
        Backend be = Backends.create(backend, null, BackendCheck::differences);
        try (Generator g = new Generator(be, checkpoint, CheckpointStore::local)) {
            byte[] text = g.generate(prompt.getBytes(StandardCharsets.UTF_8), tokens, temperature, topP, seed);
            PrintStream out = new PrintStream(new WriterOutputStream(spec.commandLine().getOut()), true,
                    StandardCharsets.UTF_8);
            out.print(prompt);
            out.print(new String(text, StandardCharsets.UTF_8));
            out.println();
            out.flush();
        }
        return 0;
    }
}
