package io.roundhouse.driver;

import io.roundhouse.kernels.Backend;
import io.roundhouse.kernels.Backends;
import io.roundhouse.worker.checkpoint.CheckpointStore;
import io.roundhouse.worker.export.ModelExport;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code roundhouse export}: a checkpoint as files PyTorch code reads. */
@Command(name = "export", mixinStandardHelpOptions = true,
        description = "Export a checkpoint for PyTorch: DIR/model.safetensors (float32) and DIR/config.json. A language "
                + "model (model.kind=lm) gets Mixtral/Hugging Face names (scripts/roundhouse_twin.py runs it), the "
                + "classifier and the NiNformer names of their own (scripts/roundhouse_classifier_twin.py and "
                + "scripts/roundhouse_ninformer_twin.py run them); docs/architecture.md "
                + "lists them. A run leaves the same export in its run directory's export/.")
final class ExportCommand implements Callable<Integer> {
    @Option(names = "--checkpoint", required = true, paramLabel = "DIR",
            description = "a checkpoint step folder, or a folder of them (the latest complete one is taken)")
    String checkpoint;

    @Option(names = "--format", defaultValue = "safetensors", description = "safetensors (the only one so far; "
            + "default: ${DEFAULT-VALUE})")
    String format;

    @Option(names = "--out", required = true, paramLabel = "DIR",
            description = "the folder to write (created; refused when it already holds model.safetensors)")
    Path out;

    @Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        if (!format.equals("safetensors")) {
            throw new picocli.CommandLine.ParameterException(spec.commandLine(), "--format " + format
                    + " is not supported; use --format safetensors");
        }
        // Loading and transposing need no accelerator: the CPU backend always.
        Backend be = Backends.create("cpu");
        try {
            ModelExport.run(be, checkpoint, CheckpointStore::local, out);
        } finally {
            be.close();
        }
        spec.commandLine().getOut().println("wrote " + out.resolve(ModelExport.WEIGHTS) + " and "
                + out.resolve(ModelExport.CONFIG));
        return 0;
    }
}
