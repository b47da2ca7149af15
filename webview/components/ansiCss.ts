/** CSS for ANSI styles: the 16 colours map onto the theme's terminal colours, so logs follow the theme. */
import { themeColorVar } from './ansi';

export function ansiCss(): string {
  const rules: string[] = [];
  for (let i = 0; i < 16; i++) {
    rules.push(`.ansi-fg-${i} { color: var(${themeColorVar(i)}); }`);
    rules.push(`.ansi-bg-${i} { background-color: var(${themeColorVar(i)}); }`);
  }
  rules.push(
    '.ansi-bold { font-weight: bold; }',
    '.ansi-faint { opacity: 0.7; }',
    '.ansi-italic { font-style: italic; }',
    '.ansi-underline { text-decoration: underline; }',
    '.ansi-strike { text-decoration: line-through; }',
    '.ansi-inverse { color: var(--vscode-editor-background); background-color: var(--vscode-editor-foreground); }',
  );
  return rules.join('\n');
}
