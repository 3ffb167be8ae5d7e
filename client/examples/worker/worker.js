// The worker's script: loads the example's module, whose `main` runs once it is loaded.
import init from "./pkg/worker.js";
init();
