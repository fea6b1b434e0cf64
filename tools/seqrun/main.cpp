// seqrun: the command-line front end (inspect, run).
int main() { return 0; }
