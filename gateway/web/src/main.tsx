import { render } from 'preact';
import { Client } from './client';
import { App } from './ui/App';
import './styles.css';

const client = new Client();
const root = document.getElementById('app');
if (root) {
  root.textContent = '';
  render(<App client={client} />, root);
}
void client.start();
