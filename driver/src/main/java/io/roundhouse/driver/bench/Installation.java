package io.roundhouse.driver.bench;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Files that come with Roundhouse (scripts/, conf/), found beside this installation or in the working folder. */
final class Installation {
    private Installation() {
    }

    /**
     * {@code relative} under the project root this code runs from ({@code driver/target/roundhouse.jar}
     * or {@code driver/target/classes}, three folders down), else under the working folder; null when
     * neither holds it.
     */
    static Path file(String relative) {
        List<Path> candidates = new ArrayList<>();
        try {
            Path code = Path.of(Installation.class.getProtectionDomain().getCodeSource().getLocation().toURI());
            Path root = code.getParent() == null || code.getParent().getParent() == null ? null
                    : code.getParent().getParent().getParent();
            if (root != null) {
                candidates.add(root.resolve(relative));
            }
        } catch (java.net.URISyntaxException | SecurityException | NullPointerException e) {
            // no code source: the working folder alone
        }
        candidates.add(Path.of(relative).toAbsolutePath());
        return candidates.stream().filter(Files::isRegularFile).findFirst().orElse(null);
    }
}
