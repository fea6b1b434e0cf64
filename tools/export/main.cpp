// seqrun-export: converts models into .seqrun files and runs ONNX conformance folders.
int main() { return 0; }
