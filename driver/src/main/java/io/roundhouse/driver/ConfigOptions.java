package io.roundhouse.driver;

import io.roundhouse.worker.config.ConfigException;
import io.roundhouse.worker.config.JobConfig;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** The options every job command shares: a config file and key=value overrides. */
public final class ConfigOptions {
    @Option(names = {"-c", "--config"}, paramLabel = "FILE",
            description = "job config file (key = value lines); without it every key has its default")
    Path file;

    @Parameters(paramLabel = "KEY=VALUE", arity = "0..*",
            description = "overrides applied after the file, e.g. model.experts=16 train.epochs=3")
    List<String> overrides = List.of();

    @Option(names = "--resume", paramLabel = "PATH",
            description = "continue from a checkpoint: a step-NNNNNNNN folder, or a folder of them (the latest "
                    + "complete one); the same as train.resume=PATH")
    String resume;

    JobConfig resolve() {
        Map<String, String> map = parseOverrides(overrides);
        if (resume != null) {
            if (map.containsKey("train.resume")) {
                throw new ConfigException("--resume and train.resume are both given; use one");
            }
            map.put("train.resume", resume);
        }
        return JobConfig.load(file, map);
    }

    /** {@code KEY=VALUE} words to a map; a word without '=' or a key given twice is an error. */
    public static Map<String, String> parseOverrides(List<String> overrides) {
        Map<String, String> map = new LinkedHashMap<>();
        for (String o : overrides) {
            int eq = o.indexOf('=');
            if (eq <= 0) {
                throw new ConfigException("override '" + o + "' is not KEY=VALUE (e.g. train.epochs=3)");
            }
            String key = o.substring(0, eq).trim();
            if (map.containsKey(key)) {
                throw new ConfigException("override for " + key + " is given twice");
            }
            map.put(key, o.substring(eq + 1));
        }
        return map;
    }
}
