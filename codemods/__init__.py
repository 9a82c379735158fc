"""libcst codemod commands that write the autodurable plan into source."""
